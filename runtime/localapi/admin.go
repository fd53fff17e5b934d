package localapi

import (
	"context"
	"io"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/policy"
)

// AuditVerifyResult is what POST /v1/audit/verify returns: the host takes
// a checkpoint, then verifies the whole log against its key.
type AuditVerifyResult struct {
	// Report is the verification report; Report.Problem is nil when the
	// log verified.
	Report audit.Report `json:"report"`
	// Checkpoint is the signed checkpoint the host took first (note text).
	Checkpoint string `json:"checkpoint"`
	// VerifierKey is the note verifier key that checks the checkpoints
	// (give it to third parties).
	VerifierKey string `json:"verifier_key"`
}

// AuditBackend is the audit log and policy part of the host the admin API
// serves. A [Backend] that also implements it gets the /v1/audit and
// /v1/policy endpoints; otherwise they answer 501.
type AuditBackend interface {
	// AuditVerify checkpoints the log, then verifies it.
	AuditVerify(ctx context.Context) (AuditVerifyResult, error)
	// AuditRead returns up to limit records from index from on; from < 0
	// means the last -from records.
	AuditRead(ctx context.Context, from int64, limit int) ([]audit.Entry, error)
	// AuditExport writes records from index from on as JSON lines and
	// returns how many it wrote.
	AuditExport(ctx context.Context, w io.Writer, from int64) (int64, error)
	// AuditTrace rebuilds the execution chain of a transaction or task.
	// An error wrapping audit.ErrNotFound means 404.
	AuditTrace(ctx context.Context, id string) (*audit.TraceNode, error)
	// AuditCheck replays the log against rules.
	AuditCheck(ctx context.Context, rules audit.Rules) ([]audit.Violation, error)
	// AuditCheckpoint returns the latest signed checkpoint (taking one if
	// none exists) and the verifier key.
	AuditCheckpoint(ctx context.Context) (checkpoint []byte, verifierKey string, err error)
	// AuditInclusionProof proves record index is in the tree of size
	// treeSize; AuditConsistencyProof proves the tree of size newSize
	// extends the one of size oldSize. Hashes are base64 (tlog.Hash text).
	AuditInclusionProof(ctx context.Context, index, treeSize int64) ([]string, error)
	AuditConsistencyProof(ctx context.Context, oldSize, newSize int64) ([]string, error)
	// PolicyReload re-reads the policy files and returns the version in
	// force; on error the previous set stays in force.
	PolicyReload(ctx context.Context) (version string, err error)
	// PolicyDecide evaluates one request against the policies in force.
	PolicyDecide(ctx context.Context, r policy.Request) (policy.Decision, error)
}
