package console

import (
	"context"
	"errors"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
)

// Backend is what the console shows and acts on: the host. Every method
// may be called concurrently.
type Backend interface {
	AgentSource
	TaskSource
	ApprovalSource
	AuditSource
	TrustSource
	UserSource
}

// AgentSource is the agents part of the host.
type AgentSource interface {
	// Agents lists the host's agents, in the host's order.
	Agents(ctx context.Context) ([]Agent, error)
	// Quarantine stops agent and keeps it stopped, refusing its tasks
	// and credentials, until it is released; reason is recorded. An
	// unknown agent MUST be an error wrapping ErrUnknownAgent.
	Quarantine(ctx context.Context, agent, reason string) error
	// Release lifts agent's quarantine and starts it again. An agent
	// that is not quarantined MUST be an error wrapping
	// ErrNotQuarantined, an unknown one ErrUnknownAgent.
	Release(ctx context.Context, agent, reason string) error
}

// TaskSource is the running and recent tasks of the host.
type TaskSource interface {
	// Tasks lists the running tasks and those that ended recently,
	// newest first, without their events.
	Tasks(ctx context.Context) []Task
	// WatchTask returns the task id as it is now, with its events, and a
	// channel that is closed at its next change (an event, its end). ok
	// is false for a task the host does not know (never, or no longer).
	WatchTask(ctx context.Context, id string) (t Task, changed <-chan struct{}, ok bool)
}

// ApprovalSource is the approval requests waiting for users.
type ApprovalSource interface {
	// Approvals lists the requests waiting for user's decision, or for
	// any user's when user is "", oldest first.
	Approvals(ctx context.Context, user string) ([]Approval, error)
}

// AuditSource is the host's audit log. Reads see every record of calls
// that have returned.
type AuditSource interface {
	// AuditRead returns up to limit records from index from on; from < 0
	// means the last -from records.
	AuditRead(ctx context.Context, from int64, limit int) ([]audit.Entry, error)
	// AuditTrace rebuilds the execution chain of a transaction or task.
	// An id no record has MUST be an error wrapping audit.ErrNotFound.
	AuditTrace(ctx context.Context, id string) (*audit.TraceNode, error)
	// AuditCheckpoint returns the latest signed checkpoint.
	AuditCheckpoint(ctx context.Context) (Checkpoint, error)
	// AuditVerify checkpoints the log and verifies all of it.
	AuditVerify(ctx context.Context) (Verification, error)
}

// TrustSource is the trust the host holds and publishes.
type TrustSource interface {
	Trust(ctx context.Context) (Trust, error)
}

// UserSource says who may use the console.
type UserSource interface {
	// UserActive reports whether user, signed in at signedIn, may still
	// use the console: a user of the authorization server whose
	// credentials have not been revoked since.
	UserActive(ctx context.Context, user string, signedIn time.Time) (bool, error)
}

// Errors a Backend returns (wrapped) for an action it refuses.
var (
	// ErrUnknownAgent: no agent has that name.
	ErrUnknownAgent = errors.New("console: unknown agent")
	// ErrNotQuarantined: the agent to release is not quarantined.
	ErrNotQuarantined = errors.New("console: the agent is not quarantined")
)

// Agent states, as [Agent.State] holds them.
const (
	AgentRunning     = "running"
	AgentQuarantined = "quarantined"
)

// Agent is one hosted agent.
type Agent struct {
	Name string
	// SPIFFEID is the agent's workload identity.
	SPIFFEID string
	// State is running, starting, backoff, quarantined, failed or stopped.
	State     string
	PID       int
	Restarts  int
	LastError string
	// Since is when the agent entered State.
	Since time.Time
	// SVIDExpires is when the agent's current X.509-SVID expires; zero
	// when it holds none (not running, or quarantined).
	SVIDExpires time.Time
	// BinarySHA256 is the digest of the plugin binary the host measured
	// and pinned at launch: the only executable that gets the agent's
	// SVIDs.
	BinarySHA256 string
	// Attestation is "verified" when the running plugin process was
	// measured and runs the pinned binary, "unverified" otherwise, ""
	// when it does not run; MeasuredSHA256 is what was measured.
	Attestation    string
	MeasuredSHA256 string
	// Sandbox names the protections that contain the plugin process.
	Sandbox     string
	Description string
	Version     string
}

// Task states, as [Task.State] holds them.
const (
	TaskRunning   = "running"
	TaskCompleted = "completed"
	TaskFailed    = "failed"
)

// Task is one task of an agent: started by a user or the operator, or
// delegated by another agent (ParentTask).
type Task struct {
	ID string
	// Txn is the transaction the task belongs to, shared with the tasks
	// it delegates and the task that delegated it.
	Txn        string
	ParentTask string
	Agent      string
	// User is the user the task acts for ("" for nobody), and
	// SubjectSource how the host knows: token or operator.
	User          string
	SubjectSource string
	// Input is the task as the agent received it (possibly cut short).
	Input   string
	Started time.Time
	// Ended is zero while the task runs.
	Ended time.Time
	// State is TaskRunning, TaskCompleted or TaskFailed; Result is the
	// answer of a completed task and the error of a failed one.
	State  string
	Result string
	// Events are the task's latest events, oldest first; Dropped counts
	// the earlier ones no longer kept.
	Events  []TaskEvent
	Dropped int
	// Waiting are the approval requests the running task waits for.
	Waiting []Approval
}

// TaskEvent is one event of a task.
type TaskEvent struct {
	// Seq numbers the task's events from 1.
	Seq  int       `json:"seq"`
	Time time.Time `json:"time"`
	// Type is thought, tool_call, partial, final or error.
	Type      string `json:"type"`
	Text      string `json:"text,omitempty"`
	Tool      string `json:"tool,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// Approval is a request waiting for a user's decision.
type Approval struct {
	// ID is the approval ID and URL the authorization server's page
	// where the user decides.
	ID   string
	URL  string
	User string
	// Client is the client asking (the host, for its agents); Agent and
	// Tool the call to approve, when the request describes one.
	Client         string
	Agent          string
	Tool           string
	BindingMessage string
	Created        time.Time
	Expires        time.Time
}

// Checkpoint is a signed checkpoint of the audit log.
type Checkpoint struct {
	// Size is the number of records it covers and Hash their tree hash.
	Size int64
	Hash string
	// Origin is the log's name the checkpoint is signed under, and
	// VerifierKey the key that checks it.
	Origin      string
	VerifierKey string
}

// Verification is the result of verifying the whole audit log.
type Verification struct {
	// Time is when it was verified.
	Time time.Time
	// Size is the number of records of the log, Records those whose
	// hashes were recomputed, Checkpoints the signatures checked and
	// Covered the records a signature covers.
	Size        int64
	Records     int64
	Checkpoints int64
	Covered     int64
	TreeHash    string
	// Problem is the first problem found; empty when the log verified.
	Problem string
}

// OK reports whether the log verified.
func (v Verification) OK() bool { return v.Problem == "" }

// Trust is the trust the host holds: its trust domain's authorities, the
// authorization server's signing keys, the federated trust domains.
type Trust struct {
	TrustDomain string
	// Source says where the identities come from: the host's own CA, or
	// an upstream Workload API.
	Source      string
	Authorities []Authority
	SigningKeys []SigningKey
	Federated   []FederatedDomain
}

// Authority is one authority of the trust domain's bundle.
type Authority struct {
	// Kind is x509, jwt or wit; Slot current, next or retired ("" when
	// the source does not say).
	Kind string
	Slot string
	// Key names it: a kid, or an X.509 authority's subject and serial.
	Key string
	// NotBefore and NotAfter bound its validity (zero when the bundle
	// does not say, as for a JWT key of an upstream); Rotates is when the
	// current one hands over to the next.
	NotBefore time.Time
	NotAfter  time.Time
	Rotates   time.Time
}

// SigningKey is a signing key of the authorization server.
type SigningKey struct {
	KID string
	// State is current, next or retired.
	State     string
	Activates time.Time
	Retires   time.Time
}

// FederatedDomain is a trust domain this one federates with.
type FederatedDomain struct {
	TrustDomain string
	Endpoint    string
	Profile     string
	HasBundle   bool
	Sequence    uint64
	LastSuccess time.Time
	NextRefresh time.Time
	Failures    int
	LastError   string
}
