package host

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/pgstore"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// auditor writes the host's records to the tamper-evident audit log. It is
// the mediator's Auditor; the host's own components append richer records
// (remediations) with Append.
type auditor struct {
	log  *audit.Log
	st   store.Log
	vkey string
}

var _ mediator.Auditor = (*auditor)(nil)

// newAudit opens the audit log over the host's store, signed with the key
// kept outside it (auditSigner). The host refuses to start when the key is
// not the one audit.verifier_key pins, or when the log does not extend the
// newest checkpoint kept in audit.checkpoint_dir (a rolled back or
// rewritten store). Every new checkpoint goes to that directory and to the
// witness at audit.witness_url.
func (h *Host) newAudit(ctx context.Context) error {
	signer, err := h.auditSigner(ctx)
	if err != nil {
		return err
	}
	vkey := signer.VerifierKey()
	if pin := h.cfg.Audit.VerifierKey; pin != "" && pin != vkey {
		return fmt.Errorf("host: the audit signing key has verifier key %s, but audit.verifier_key pins %s: refusing to start with another key than the pinned one",
			vkey, pin)
	}
	publish, dir, err := h.auditPublisher(ctx)
	if err != nil {
		return err
	}
	var kept []byte
	if dir != nil {
		kept, err = dir.Latest()
		if errors.Is(err, audit.ErrNotFound) {
			kept, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("host: audit.checkpoint_dir: %w", err)
		}
	}
	// Hosts that share a database (PostgreSQL) write one audit log: each
	// sequences its commits after the others' and takes their records into
	// its tree; the one holding the checkpoint lease writes and publishes
	// the checkpoints (see the audit package's "Several writers").
	l, err := audit.Open(ctx, audit.Config{
		Log: h.store, Signer: signer, Kept: kept, Publish: publish, Now: h.now, Logger: h.log.With("component", "audit"),
		CheckpointEvery: h.cfg.Audit.CheckpointEvery, CheckpointInterval: h.cfg.Audit.CheckpointInterval,
		Holder: auditHolder(h.dataDir), OnAppend: h.telemetry.AuditAppended,
	})
	if err != nil {
		if kept != nil && errors.Is(err, audit.ErrTampered) {
			return fmt.Errorf("host: the audit log in the store does not extend the newest checkpoint kept in %s: %w", dir.Path(), err)
		}
		return fmt.Errorf("host: %w", err)
	}
	h.closers = append(h.closers, func() {
		if err := l.Close(context.Background()); err != nil {
			h.log.Error("closing the audit log failed", "err", err)
		}
	})
	h.audit = &auditor{log: l, st: h.store, vkey: vkey}
	return nil
}

// auditHolder names the host among the writers of a shared audit log, as
// the holder of its checkpoint lease: the machine and the data directory,
// which one host at a time runs on (it holds the directory's lock), so
// that a host started again after a crash takes its own lease back at
// once rather than wait for it to expire.
func auditHolder(dataDir string) string {
	host, _ := os.Hostname()
	if len(host) > 64 {
		host = host[:64]
	}
	host = strings.ToValidUTF8(strings.ReplaceAll(host, "\x00", ""), "?")
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	sum := sha256.Sum256([]byte(dataDir))
	return "host " + host + " " + hex.EncodeToString(sum[:8])
}

// auditPublisher returns what receives every new checkpoint, from the
// config: the checkpoint directory and the witness. nil when neither is
// configured.
func (h *Host) auditPublisher(ctx context.Context) (func(context.Context, *audit.Log, []byte), *audit.CheckpointDir, error) {
	a := h.cfg.Audit
	var dir *audit.CheckpointDir
	if a.CheckpointDir != "" {
		var err error
		if dir, err = audit.NewCheckpointDir(a.CheckpointDir); err != nil {
			return nil, nil, fmt.Errorf("host: audit.checkpoint_dir: %w", err)
		}
		if rel, err := filepath.Rel(h.dataDir, dir.Path()); err == nil && !strings.HasPrefix(rel, "..") {
			h.log.WarnContext(ctx, "audit.checkpoint_dir is inside the data directory: a rollback of the directory rolls the kept checkpoints back too",
				slog.String("checkpoint_dir", dir.Path()))
		}
	}
	var w *audit.Witness
	if a.WitnessURL != "" {
		var err error
		if w, err = audit.NewWitness(audit.WitnessConfig{URL: a.WitnessURL, Key: a.WitnessKey, Now: h.now,
			Logger: h.log.With("component", "audit")}); err != nil {
			return nil, nil, fmt.Errorf("host: audit.witness_url: %w", err)
		}
	}
	if dir == nil && w == nil {
		return nil, nil, nil
	}
	publish := func(ctx context.Context, l *audit.Log, cp []byte) {
		if dir != nil {
			if err := dir.Write(cp); err != nil {
				h.log.ErrorContext(ctx, "audit: keeping a checkpoint in audit.checkpoint_dir failed", slog.Any("error", err))
			}
		}
		if w == nil {
			return
		}
		cosigned, err := w.AddCheckpoint(ctx, cp, l)
		if err != nil {
			h.log.ErrorContext(ctx, "audit: the witness did not cosign the checkpoint", slog.String("witness", w.Name()), slog.Any("error", err))
			return
		}
		if dir != nil {
			if err := dir.Write(cosigned); err != nil {
				h.log.ErrorContext(ctx, "audit: keeping the cosigned checkpoint failed", slog.Any("error", err))
			}
		}
	}
	return publish, dir, nil
}

// Record implements mediator.Auditor: the record is durable in the
// tamper-evident log when Record returns.
func (a *auditor) Record(ctx context.Context, r mediator.Record) error {
	_, err := a.log.Append(ctx, fromMediator(r))
	return err
}

// Queue implements mediator.Queuer: the record is committed with the next
// batch, behind every record before it, without the caller waiting.
func (a *auditor) Queue(_ context.Context, r mediator.Record) error {
	return a.log.Queue(fromMediator(r))
}

// Append writes a record the host composed itself.
func (a *auditor) Append(ctx context.Context, r audit.Record) error {
	_, err := a.log.Append(ctx, r)
	return err
}

// fromMediator maps a mediator record onto the audit log's. Txn is the
// root transaction (the txn of the Txn-Token the request that began it was
// given), the same for a task and every task it delegates; Task and
// ParentTask keep each task and the task that delegated it, so `audit
// trace TXN` shows the user's request, its agents and their tool calls as
// one tree.
func fromMediator(r mediator.Record) audit.Record {
	txn := r.Txn
	if txn == "" {
		txn = r.TaskID
	}
	return audit.Record{
		Time: r.Time, Agent: r.Agent, AgentID: r.Identity, Subject: r.Subject, SubjectSource: r.SubjectSource,
		Action: r.Action, Resource: r.Resource,
		Decision: r.Decision, Policy: r.Policy, Reason: r.Reason, Outcome: r.Outcome, Error: r.Error,
		Task: r.TaskID, Txn: txn, ParentTask: r.ParentTask, Chain: r.Chain, ArgsSHA256: r.ArgsSHA256,
		TokenSHA256: r.TokenSHA256, TokenJTI: r.TokenJTI, Attestation: r.Attestation, Risk: r.Risk, BinarySHA256: r.BinarySHA256,
		ApprovalID: r.ApprovalID, Approver: r.Approver,
	}
}

var _ localapi.AuditBackend = (*Host)(nil)

// AuditVerify implements localapi.AuditBackend: it signs a checkpoint of
// everything written so far, then verifies the whole log with the host's
// own key. Records the host appended after that checkpoint are not a
// failure. With several hosts on one database, everything written is every
// host's records, and a host that does not hold the checkpoint lease gives
// the signed tree without storing it (the commit seal the store holds).
func (h *Host) AuditVerify(ctx context.Context) (localapi.AuditVerifyResult, error) {
	return h.AuditVerifyPinned(ctx, localapi.AuditVerifyRequest{})
}

var _ localapi.AuditPinnedVerifier = (*Host)(nil)

// AuditVerifyPinned implements localapi.AuditPinnedVerifier: AuditVerify
// with the verifier key the caller pins (never the host's own, then) and
// against the checkpoint it kept.
func (h *Host) AuditVerifyPinned(ctx context.Context, req localapi.AuditVerifyRequest) (localapi.AuditVerifyResult, error) {
	vkey := req.VerifierKey
	if vkey == "" {
		vkey = h.audit.vkey
	}
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		return localapi.AuditVerifyResult{}, fmt.Errorf("%w: %w", localapi.ErrBadVerifyRequest, err)
	}
	var kept []byte
	if req.Checkpoint != "" {
		kept = []byte(req.Checkpoint)
		if _, err := audit.OpenCheckpoint(kept, v); err != nil {
			return localapi.AuditVerifyResult{}, fmt.Errorf("%w: the kept checkpoint: %w", localapi.ErrBadVerifyRequest, err)
		}
	}
	cp, err := h.audit.log.Checkpoint(ctx)
	if errors.Is(err, audit.ErrNotFound) {
		cp, err = nil, nil // an empty log: nothing to sign, and nothing to verify but the kept checkpoint
	}
	if err != nil {
		return localapi.AuditVerifyResult{}, fmt.Errorf("host: audit checkpoint: %w", err)
	}
	rep, err := verifyStored(ctx, h.store, vkey, kept)
	if err != nil {
		return localapi.AuditVerifyResult{}, err
	}
	if tree, err := audit.OpenCheckpoint(cp, v); err == nil && ownTail(rep, tree.N, h.audit.log.Size()) {
		rep.Problem, rep.Uncovered = nil, nil
	}
	return localapi.AuditVerifyResult{Report: rep, Checkpoint: string(cp), VerifierKey: vkey}, nil
}

// ownTail reports whether the only problem of rep is records after the
// last signed point that the host wrote itself after the checkpoint of
// signed records it took before verifying: they follow that checkpoint
// and the store holds no more records than the host committed (committed
// read after verifying). Records the log declared unaccounted, and any
// record someone else appended, stay a problem.
func ownTail(rep audit.Report, signed, committed int64) bool {
	p := rep.Problem
	return p != nil && p.Kind == audit.ProblemUncovered && len(rep.Uncovered) == 1 &&
		rep.Uncovered[0] == (audit.Range{From: rep.Covered, To: rep.Size}) &&
		rep.Covered >= signed && rep.Size <= committed
}

// verifyStored verifies the audit log in st with the verifier key vkey
// and, if kept is not nil, against that checkpoint kept outside the
// store. A report with a problem is not an error; an unreadable log, a key
// that does not parse and a kept checkpoint it does not sign are.
func verifyStored(ctx context.Context, st store.Log, vkey string, kept []byte) (audit.Report, error) {
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		return audit.Report{}, fmt.Errorf("host: %w", err)
	}
	var opts []audit.VerifyOption
	if kept != nil {
		opts = append(opts, audit.AgainstCheckpoint(kept))
	}
	rep, err := audit.Verify(ctx, st, v, opts...)
	if err != nil && !errors.Is(err, audit.ErrTampered) && !errors.Is(err, audit.ErrUncovered) {
		return rep, fmt.Errorf("host: %w", err)
	}
	return rep, nil
}

// AuditRead implements localapi.AuditBackend. Like every read of the log
// through the host, it first waits for the records queued before it (the
// outcomes of calls that have returned) to be committed.
func (h *Host) AuditRead(ctx context.Context, from int64, limit int) ([]audit.Entry, error) {
	if err := h.audit.log.Sync(ctx); err != nil {
		return nil, err
	}
	if from < 0 {
		return audit.Tail(ctx, h.store, int(-from))
	}
	return audit.Read(ctx, h.store, from, limit)
}

// AuditExport implements localapi.AuditBackend.
func (h *Host) AuditExport(ctx context.Context, w io.Writer, from int64) (int64, error) {
	if err := h.audit.log.Sync(ctx); err != nil {
		return 0, err
	}
	return audit.Export(ctx, h.store, w, from)
}

// AuditTrace implements localapi.AuditBackend.
func (h *Host) AuditTrace(ctx context.Context, id string) (*audit.TraceNode, error) {
	if err := h.audit.log.Sync(ctx); err != nil {
		return nil, err
	}
	return audit.Trace(ctx, h.store, id)
}

// AuditCheck implements localapi.AuditBackend.
func (h *Host) AuditCheck(ctx context.Context, rules audit.Rules) ([]audit.Violation, error) {
	if err := h.audit.log.Sync(ctx); err != nil {
		return nil, err
	}
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

// AuditVerifyOptions say what [VerifyAuditOffline] verifies, and with
// what.
type AuditVerifyOptions struct {
	// DataDir is the data directory. Required.
	DataDir string
	// StorePath is the SQLite file; empty means the default one in
	// DataDir.
	StorePath string
	// DSN, when set, is the PostgreSQL database the log is in (storage
	// driver postgres) instead of a SQLite file. Other hosts may be
	// writing to it meanwhile: the log is verified up to its latest seal.
	DSN string
	// VerifierKey is the verifier key the caller pins: signatures are
	// checked with it and with nothing the data directory holds. Empty
	// means the key the host gives for itself (audit/verifier.key, or the
	// key an earlier version kept in the store).
	VerifierKey string
	// Checkpoint is a checkpoint note kept outside the store (see
	// audit.LoadCheckpoint); the log must extend it.
	Checkpoint []byte
}

// VerifyAuditOffline verifies the audit log of the data directory while no
// host runs on it. It holds the directory's lock meanwhile, so no host starts
// and writes. Records no signature vouches for are reported. The result's
// Checkpoint is the last stored checkpoint, if any, and its VerifierKey
// the key used.
func VerifyAuditOffline(ctx context.Context, opts AuditVerifyOptions) (localapi.AuditVerifyResult, error) {
	var res localapi.AuditVerifyResult
	dataDir := opts.DataDir
	if _, err := os.Stat(dataDir); err != nil {
		return res, fmt.Errorf("%w, and there is no stored log to verify (%v)", ErrNotRunning, err)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return res, err
	}
	defer lock.release()
	var st store.Store
	if opts.DSN != "" {
		octx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
		pst, err := pgstore.Open(octx, pgstore.Config{DSN: opts.DSN})
		cancel()
		if err != nil {
			return res, fmt.Errorf("host: %w", err)
		}
		st = pst
	} else {
		storePath := opts.StorePath
		if storePath == "" {
			storePath = filepath.Join(dataDir, dbFileName)
		}
		if _, err := os.Stat(storePath); err != nil {
			return res, fmt.Errorf("host: no store to verify: %w", err)
		}
		sst, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: storePath})
		if err != nil {
			return res, fmt.Errorf("host: %w", err)
		}
		st = sst
	}
	defer st.Close()
	vkey := opts.VerifierKey
	if vkey == "" {
		if vkey, err = hostVerifierKey(ctx, dataDir, st); err != nil {
			return res, err
		}
	}
	rep, err := verifyStored(ctx, st, vkey, opts.Checkpoint)
	if err != nil {
		return res, err
	}
	res.Report, res.VerifierKey = rep, vkey
	if n, err := st.Len(ctx, audit.CheckpointsLog); err == nil && n > 0 {
		if es, err := st.Read(ctx, audit.CheckpointsLog, n-1, 1); err == nil && len(es) == 1 {
			res.Checkpoint = string(es[0].Data)
		}
	}
	return res, nil
}

// auditIssuedTxn records a Txn-Token the authorization server issued: by
// its transaction, subject, requesting workload, scope and hash (never the
// token). One asked for over HTTP is durable before the response, as
// every access token is; one the host mints in process for a call is
// queued, since the call's own decision record is durable before it runs.
func (h *Host) auditIssuedTxn(ctx context.Context, it authserver.IssuedTxnToken) error {
	c := it.Claims
	grant := it.GrantType
	if grant == "" {
		grant = "in process"
	}
	rec := audit.Record{
		Action: audit.ActionTokenIssue, Subject: c.Subject, Resource: c.Audience, Txn: c.Txn,
		Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK, Policy: "transaction token service",
		Reason:  "txn-token, grant " + grant + ", scope " + c.Scope + ", requested by " + c.RequestingWorkload,
		AgentID: c.RequestingWorkload,
	}
	if raw, err := base64.RawURLEncoding.DecodeString(it.TokenHash); err == nil {
		rec.TokenSHA256 = hex.EncodeToString(raw)
	}
	if id, err := credentials.ParseIdentity(c.RequestingWorkload); err == nil {
		rec.Agent = h.agentNamed(id)
	}
	if rec.Agent == "" {
		rec.Agent = "host"
	}
	if it.GrantType == "" {
		return h.audit.log.Queue(rec)
	}
	return h.audit.Append(ctx, rec)
}

// auditRefusedTxn records a Txn-Token request the token endpoint refused.
func (h *Host) auditRefusedTxn(ctx context.Context, clientID string, refusal *oauth.Error) {
	rec := audit.Record{
		Action: audit.ActionTokenIssue, Agent: "client:" + clientID, Resource: h.hostID.TrustDomain(),
		Decision: audit.DecisionDeny, Outcome: "denied", Policy: "transaction token service",
		Reason: "txn-token refused: " + refusal.Code + ": " + refusal.Description,
	}
	if id, err := credentials.ParseIdentity(clientID); err == nil {
		rec.AgentID = id.String()
		if name := h.agentNamed(id); name != "" {
			rec.Agent = name
		}
	}
	if err := h.audit.Append(ctx, rec); err != nil {
		h.log.ErrorContext(ctx, "audit of a refused Txn-Token request failed", "err", err)
	}
}

// auditRefusedChaining records a refused request of identity chaining: a
// jwt-bearer grant (an ID-JAG from another domain, replayed, for another
// audience or from an untrusted issuer) or a token exchange for an ID-JAG.
func (h *Host) auditRefusedChaining(ctx context.Context, clientID, grant string, refusal *oauth.Error) {
	what := "jwt-bearer grant refused"
	if grant == oauth.GrantTokenExchange {
		what = "id-jag refused"
	}
	rec := audit.Record{
		Action: audit.ActionTokenIssue, Agent: "client:" + clientID, Resource: h.Issuer(),
		Decision: audit.DecisionDeny, Outcome: audit.OutcomeDenied, Policy: "authorization server",
		Reason: what + ": " + refusal.Code + ": " + refusal.Description,
	}
	if clientID == "" {
		rec.Agent = "client:unknown"
	}
	if id, err := credentials.ParseIdentity(clientID); err == nil {
		rec.AgentID = id.String()
		if name := h.agentNamed(id); name != "" {
			rec.Agent = name
		}
	}
	if err := h.audit.Append(ctx, rec); err != nil {
		h.log.ErrorContext(ctx, "audit of a refused chaining request failed", "err", err)
	}
}

// auditIssued records every access token the authorization server issues
// (its jti, never the token) before the token is handed out: who it is for,
// which client, the audience, scope and delegation chain.
func (h *Host) auditIssued(ctx context.Context, it authserver.Issued) error {
	c := it.Claims
	reason := "grant " + it.GrantType
	if it.TokenType == oauth.TokenTypeIDJAG {
		reason = "id-jag, " + reason
	}
	reason += ", scope " + c.Scope
	if c.SubjectID != nil && c.SubjectID.Issuer != "" && c.SubjectID.Issuer != h.Issuer() {
		// A user of another issuer, by its ID-JAG.
		reason += ", subject " + c.SubjectID.Subject + " of " + c.SubjectID.Issuer
	}
	rec := audit.Record{
		Action: audit.ActionTokenIssue, Subject: c.Subject, Resource: strings.Join(c.Audience, " "),
		Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK, Policy: "authorization server",
		Reason: strings.TrimSpace(reason), TokenJTI: c.ID,
	}
	if id, err := credentials.ParseIdentity(c.ClientID); err == nil {
		rec.AgentID = id.String()
		rec.Agent = h.agentNamed(id)
	}
	if rec.Agent == "" {
		// A static or registered client, or a workload of a federated
		// trust domain.
		rec.Agent = "client:" + c.ClientID
	}
	for a := c.Actor; a != nil; a = a.Actor {
		rec.Chain = append([]string{a.Subject}, rec.Chain...)
	}
	return h.audit.Append(ctx, rec)
}
