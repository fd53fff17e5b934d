package host

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/attest"
	"github.com/agenthost/agenthost/credentials/workloadapi"
)

// IssuanceLog is the store log that holds one [IssuanceRecord] per SVID the
// Workload API issues, in order.
const IssuanceLog = "identity.issued"

// evidenceMaxAge bounds how long collected evidence about a process is
// reused for later issuances to the same process.
const evidenceMaxAge = time.Minute

// IssuanceRecord is what the host records about each credential it issues:
// which identity, what kind, until when, and the attestation evidence of the
// process it was issued to.
type IssuanceRecord struct {
	Time      time.Time `json:"time"`
	SPIFFEID  string    `json:"spiffe_id"`
	Kind      string    `json:"kind"`
	Serial    string    `json:"serial,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// Evidence is absent when the host issued the credential on its own
	// (registration, rotation) rather than to a connected process.
	Evidence *attest.Evidence `json:"evidence,omitempty"`
	// EvidenceError says why evidence about the caller could not be
	// collected.
	EvidenceError string `json:"evidence_error,omitempty"`
}

// evidenceCache keeps recent evidence per pid so that a process fetching
// many JWT-SVIDs is not re-hashed each time. An entry is reused only while
// the executable behind /proc/<pid>/exe keeps its size and mtime.
type evidenceCache struct {
	mu        sync.Mutex
	collector *attest.Collector
	digest    string
	now       func() time.Time
	byPID     map[int]attest.Evidence
}

func newEvidenceCache(configDigest string, now func() time.Time, log *slog.Logger) *evidenceCache {
	return &evidenceCache{
		collector: attest.New(attest.Config{Now: now, Logger: log}),
		digest:    configDigest,
		now:       now,
		byPID:     map[int]attest.Evidence{},
	}
}

func (c *evidenceCache) get(ctx context.Context, pid int) (attest.Evidence, error) {
	c.mu.Lock()
	e, ok := c.byPID[pid]
	c.mu.Unlock()
	if ok && c.now().Sub(e.CollectedAt) < evidenceMaxAge && sameExecutable(pid, e) {
		return e, nil
	}
	e, err := c.collector.Collect(ctx, attest.Request{PID: pid, ConfigDigest: c.digest})
	if err != nil {
		return attest.Evidence{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, old := range c.byPID { // keep the cache small
		if c.now().Sub(old.CollectedAt) >= evidenceMaxAge {
			delete(c.byPID, p)
		}
	}
	c.byPID[pid] = e
	return e, nil
}

func sameExecutable(pid int, e attest.Evidence) bool {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && fi.Size() == e.Size && fi.ModTime().Equal(e.ModTime)
}

// recordIssue is the Workload API's OnIssue hook: it appends an
// IssuanceRecord to the store. A failure to record is logged; the credential
// has already been issued by then.
func (h *Host) recordIssue(ctx context.Context, ev workloadapi.IssueEvent) {
	rec := IssuanceRecord{
		Time:      h.now().UTC(),
		SPIFFEID:  ev.Workload.String(),
		Kind:      string(ev.Kind),
		Serial:    ev.Serial,
		ExpiresAt: ev.ExpiresAt.UTC(),
	}
	if ev.Peer != nil {
		e, err := h.evidence.get(ctx, ev.Peer.PID)
		if err != nil {
			rec.EvidenceError = err.Error()
		} else {
			rec.Evidence = &e
		}
	}
	b, err := json.Marshal(rec)
	if err == nil {
		_, err = h.store.Append(ctx, IssuanceLog, b)
	}
	if err != nil {
		h.log.WarnContext(ctx, "could not record an issued credential",
			slog.String("spiffe_id", rec.SPIFFEID), slog.String("kind", rec.Kind), slog.Any("error", err))
	}
}
