package host

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// The audit log's checkpoint signing key lives in the store, so a restart
// keeps signing with it.
const keyAuditSigner = "audit-signing-key"

type auditKeyPair struct {
	Signer   string `json:"signer"`
	Verifier string `json:"verifier"`
}

// auditor writes the host's records to the tamper-evident audit log. It is
// the mediator's Auditor; the host's own components append richer records
// (remediations) with Append.
type auditor struct {
	log  *audit.Log
	st   store.Log
	vkey string
}

var _ mediator.Auditor = (*auditor)(nil)

// newAudit opens the audit log over the host's store, with the signing
// key kept in the store (created on first start).
func (h *Host) newAudit(ctx context.Context) error {
	keys, err := h.auditKey(ctx)
	if err != nil {
		return err
	}
	signer, verifier, err := audit.ParseKey(keys.Signer)
	if err != nil {
		return fmt.Errorf("host: audit signing key: %w", err)
	}
	l, err := audit.Open(ctx, audit.Config{
		Log: h.store, Signer: signer, Verifier: verifier, Now: h.now, Logger: h.log.With("component", "audit"),
		CheckpointEvery: h.cfg.Audit.CheckpointEvery, CheckpointInterval: h.cfg.Audit.CheckpointInterval,
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.closers = append(h.closers, func() {
		if err := l.Close(context.Background()); err != nil {
			h.log.Error("closing the audit log failed", "err", err)
		}
	})
	h.audit = &auditor{log: l, st: h.store, vkey: keys.Verifier}
	return nil
}

// auditKey returns the checkpoint key pair of the audit log, creating it
// on first use.
func (h *Host) auditKey(ctx context.Context) (auditKeyPair, error) {
	data, err := storedKey(ctx, h.store, keyAuditSigner, "audit signing key", func() ([]byte, error) {
		var kp auditKeyPair
		var err error
		if kp.Signer, kp.Verifier, err = audit.GenerateKey(rand.Reader, h.cfg.TrustDomain); err != nil {
			return nil, err
		}
		return json.Marshal(kp)
	})
	if err != nil {
		return auditKeyPair{}, err
	}
	return decodeAuditKey(data)
}

// decodeAuditKey reads the stored audit key pair.
func decodeAuditKey(data []byte) (auditKeyPair, error) {
	var kp auditKeyPair
	if err := json.Unmarshal(data, &kp); err != nil || kp.Signer == "" || kp.Verifier == "" {
		return auditKeyPair{}, errors.New("host: the stored audit signing key is malformed")
	}
	return kp, nil
}

// verifyStored verifies the audit log in st against the verifier key. A
// report with a problem is not an error; an unreadable log is.
func verifyStored(ctx context.Context, st store.Log, vkey string) (audit.Report, error) {
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		return audit.Report{}, fmt.Errorf("host: %w", err)
	}
	rep, err := audit.Verify(ctx, st, v)
	if err != nil && !errors.Is(err, audit.ErrTampered) && !errors.Is(err, audit.ErrUncovered) {
		return rep, fmt.Errorf("host: %w", err)
	}
	return rep, nil
}

// Record implements mediator.Auditor: the record is durable in the
// tamper-evident log when Record returns.
func (a *auditor) Record(ctx context.Context, r mediator.Record) error {
	_, err := a.log.Append(ctx, fromMediator(r))
	return err
}

// Append writes a record the host composed itself.
func (a *auditor) Append(ctx context.Context, r audit.Record) error {
	_, err := a.log.Append(ctx, r)
	return err
}

// fromMediator maps a mediator record onto the audit log's. Each task is
// a transaction of its own whose parent is the task that delegated it, so
// `audit trace` shows a delegation as a subtree.
func fromMediator(r mediator.Record) audit.Record {
	txn := r.TaskID
	if txn == "" {
		txn = r.Txn
	}
	return audit.Record{
		Time: r.Time, Agent: r.Agent, AgentID: r.Identity, Subject: r.Subject, Action: r.Action, Resource: r.Resource,
		Decision: r.Decision, Policy: r.Policy, Reason: r.Reason, Outcome: r.Outcome, Error: r.Error,
		Task: r.TaskID, Txn: txn, ParentTask: r.ParentTask, ParentTxn: r.ParentTask, Chain: r.Chain, ArgsSHA256: r.ArgsSHA256,
		TokenSHA256: r.TokenSHA256, TokenJTI: r.TokenJTI, Attestation: r.Attestation, Risk: r.Risk,
	}
}

var _ localapi.AuditBackend = (*Host)(nil)

// AuditVerify implements localapi.AuditBackend: it signs a checkpoint of
// everything written so far, then verifies the whole log. Records the
// host appended after that checkpoint are not a failure.
func (h *Host) AuditVerify(ctx context.Context) (localapi.AuditVerifyResult, error) {
	cp, err := h.audit.log.Checkpoint(ctx)
	if err != nil {
		return localapi.AuditVerifyResult{}, fmt.Errorf("host: audit checkpoint: %w", err)
	}
	v, err := audit.ParseVerifier(h.audit.vkey)
	if err != nil {
		return localapi.AuditVerifyResult{}, fmt.Errorf("host: %w", err)
	}
	tree, err := audit.OpenCheckpoint(cp, v)
	if err != nil {
		return localapi.AuditVerifyResult{}, fmt.Errorf("host: %w", err)
	}
	rep, err := verifyStored(ctx, h.store, h.audit.vkey)
	if err != nil {
		return localapi.AuditVerifyResult{}, err
	}
	// Records after the checkpoint above are fine if this host wrote them
	// (the store holds no more records than the host committed); a record
	// anyone else appended stays a problem.
	if p := rep.Problem; p != nil && p.Kind == audit.ProblemUncovered && p.Index >= tree.N && rep.Size <= h.audit.log.Size() {
		rep.Problem = nil
	}
	return localapi.AuditVerifyResult{Report: rep, Checkpoint: string(cp), VerifierKey: h.audit.vkey}, nil
}

// AuditRead implements localapi.AuditBackend.
func (h *Host) AuditRead(ctx context.Context, from int64, limit int) ([]audit.Entry, error) {
	if from < 0 {
		return audit.Tail(ctx, h.store, int(-from))
	}
	return audit.Read(ctx, h.store, from, limit)
}

// AuditExport implements localapi.AuditBackend.
func (h *Host) AuditExport(ctx context.Context, w io.Writer, from int64) (int64, error) {
	return audit.Export(ctx, h.store, w, from)
}

// AuditTrace implements localapi.AuditBackend.
func (h *Host) AuditTrace(ctx context.Context, id string) (*audit.TraceNode, error) {
	return audit.Trace(ctx, h.store, id)
}

// AuditCheck implements localapi.AuditBackend.
func (h *Host) AuditCheck(ctx context.Context, rules audit.Rules) ([]audit.Violation, error) {
	return audit.Check(ctx, h.store, rules)
}

// AuditCheckpoint implements localapi.AuditBackend.
func (h *Host) AuditCheckpoint(ctx context.Context) ([]byte, string, error) {
	cp, err := h.audit.log.Latest(ctx)
	if err != nil || len(cp) == 0 {
		cp, err = h.audit.log.Checkpoint(ctx)
	}
	if err != nil {
		return nil, "", fmt.Errorf("host: audit checkpoint: %w", err)
	}
	return cp, h.audit.vkey, nil
}

// AuditInclusionProof implements localapi.AuditBackend.
func (h *Host) AuditInclusionProof(ctx context.Context, index, treeSize int64) ([]string, error) {
	p, err := h.audit.log.InclusionProof(ctx, index, treeSize)
	return proofText(p, err)
}

// AuditConsistencyProof implements localapi.AuditBackend.
func (h *Host) AuditConsistencyProof(ctx context.Context, oldSize, newSize int64) ([]string, error) {
	p, err := h.audit.log.ConsistencyProof(ctx, oldSize, newSize)
	return proofText(p, err)
}

// proofText is a proof's hashes in their text form.
func proofText[H fmt.Stringer](p []H, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, len(p))
	for i, x := range p {
		out[i] = x.String()
	}
	return out, nil
}

// VerifyAuditOffline verifies the audit log of the data directory while no
// host runs on it. It holds the directory's lock meanwhile, so no host starts
// and writes. storePath is the SQLite file; empty means the default one in
// dataDir. Records after the last checkpoint are reported, since no
// signature vouches for them. The result's Checkpoint is the last stored
// checkpoint, if any.
func VerifyAuditOffline(ctx context.Context, dataDir, storePath string) (localapi.AuditVerifyResult, error) {
	var res localapi.AuditVerifyResult
	if _, err := os.Stat(dataDir); err != nil {
		return res, fmt.Errorf("%w, and there is no stored log to verify (%v)", ErrNotRunning, err)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return res, err
	}
	defer lock.release()
	if storePath == "" {
		storePath = filepath.Join(dataDir, dbFileName)
	}
	if _, err := os.Stat(storePath); err != nil {
		return res, fmt.Errorf("host: no store to verify: %w", err)
	}
	st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: storePath})
	if err != nil {
		return res, fmt.Errorf("host: %w", err)
	}
	defer st.Close()
	rec, err := st.Get(ctx, nsHost, keyAuditSigner)
	if err != nil {
		return res, fmt.Errorf("host: the audit log's key is not in the store: %w", err)
	}
	kp, err := decodeAuditKey(rec.Value)
	if err != nil {
		return res, err
	}
	rep, err := verifyStored(ctx, st, kp.Verifier)
	if err != nil {
		return res, err
	}
	res.Report, res.VerifierKey = rep, kp.Verifier
	if n, err := st.Len(ctx, audit.CheckpointsLog); err == nil && n > 0 {
		if es, err := st.Read(ctx, audit.CheckpointsLog, n-1, 1); err == nil && len(es) == 1 {
			res.Checkpoint = string(es[0].Data)
		}
	}
	return res, nil
}

// auditIssued records every access token the authorization server issues
// (its jti, never the token) before the token is handed out: who it is for,
// which client, the audience, scope and delegation chain.
func (h *Host) auditIssued(ctx context.Context, it authserver.Issued) error {
	c := it.Claims
	rec := audit.Record{
		Action: audit.ActionTokenIssue, Subject: c.Subject, Resource: strings.Join(c.Audience, " "),
		Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK, Policy: "authorization server",
		Reason: strings.TrimSpace("grant " + it.GrantType + ", scope " + c.Scope), TokenJTI: c.ID,
	}
	if id, err := credentials.ParseIdentity(c.ClientID); err == nil {
		rec.AgentID = id.String()
		for name, aid := range h.agentIDs {
			if aid == id {
				rec.Agent = name
			}
		}
	} else {
		rec.Agent = "client:" + c.ClientID
	}
	for a := c.Actor; a != nil; a = a.Actor {
		rec.Chain = append([]string{a.Subject}, rec.Chain...)
	}
	return h.audit.Append(ctx, rec)
}
