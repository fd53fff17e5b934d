package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
)

// Actions the host records. Action is free text; these are the names the
// host components use and the compliance rules refer to.
const (
	ActionToolCall    = "tool.call"
	ActionToolList    = "tool.list"
	ActionLLMComplete = "llm.complete"
	ActionAgentCall   = "agent.call"
	ActionMCPRequest  = "mcp.request"
	ActionTokenIssue  = "token.issue"
	ActionApproval    = "approval"
	ActionRemediation = "remediation"
	// ActionPluginStart: the host started a plugin process; the record
	// says which sandbox protections contain it.
	ActionPluginStart = "plugin.start"
	// ActionWorkloadAPI is a connection to an agent's SPIFFE Workload API
	// socket; the host records those it refuses (Resource: the SPIFFE ID
	// the socket serves).
	ActionWorkloadAPI = "workloadapi.connect"
	// ActionAdminAPI is a connection to the host's admin API socket; the
	// host records those it refuses (Resource: the socket).
	ActionAdminAPI = "admin.connect"
)

// Decisions of the mediator.
const (
	DecisionAllow            = "allow"
	DecisionDeny             = "deny"
	DecisionApprovalRequired = "approval_required"
)

// Outcomes of an action.
const (
	OutcomeOK     = "ok"
	OutcomeError  = "error"
	OutcomeDenied = "denied"
)

// Remedies a remediation record applies to its agent.
const (
	// RemedyQuarantine stops the agent: from this record on, until a
	// RemedyRelease for the same agent, no action of the agent may be
	// allowed.
	RemedyQuarantine = "quarantine"
	// RemedyRelease lifts a quarantine.
	RemedyRelease = "release"
)

// Record is one audited event: a mediator decision, the outcome of an
// action, an approval or a remediation. Its fields are the minimum audit
// fields of the IETF AI agent authentication draft (draft-klrc-aiagent-auth)
// plus the links needed to rebuild a trace across agents.
//
// A record never holds a credential: tokens are referred to by their SHA-256
// ([TokenRef]) or their jti, and [Log.Append] refuses a record in which any
// text looks like a JSON Web Token.
type Record struct {
	// Seq is the record's index in the log. Append assigns it; a value set
	// by the caller is ignored.
	Seq int64 `json:"seq"`
	// Time of the event; Append sets it from the log's clock when zero.
	Time time.Time `json:"time"`
	// Agent is the acting agent's name. On a remediation record it names
	// the agent the remedy applies to.
	Agent string `json:"agent,omitempty"`
	// AgentID is the agent's workload identity (a SPIFFE ID).
	AgentID string `json:"agent_id,omitempty"`
	// Subject is the user on whose behalf the agent acts, if any.
	Subject string `json:"sub,omitempty"`
	// Action is what was attempted, e.g. [ActionToolCall]. Required.
	Action string `json:"action"`
	// Resource is the tool, model, agent or endpoint acted upon.
	Resource string `json:"resource,omitempty"`
	// Decision is the mediator's decision: [DecisionAllow], [DecisionDeny]
	// or [DecisionApprovalRequired]; empty for records that carry no
	// decision.
	Decision string `json:"decision,omitempty"`
	// Policy names the policy that decided and Reason says why.
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Outcome of the action: [OutcomeOK], [OutcomeError] or
	// [OutcomeDenied]; empty when not known yet. Error holds the error text.
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
	// Task is the task the action belongs to and Txn the transaction
	// (correlation) id of the request.
	Task string `json:"task,omitempty"`
	Txn  string `json:"txn,omitempty"`
	// ParentTask and ParentTxn name the task or transaction that caused
	// this one (an agent calling another agent), so a trace can be rebuilt.
	ParentTask string `json:"parent_task,omitempty"`
	ParentTxn  string `json:"parent_txn,omitempty"`
	// Chain is the delegation chain of agents, outermost first.
	Chain []string `json:"chain,omitempty"`
	// Attestation and Risk are the agent's attestation and risk state when
	// the decision was made.
	Attestation string `json:"attestation,omitempty"`
	Risk        string `json:"risk,omitempty"`
	// Remedy is the remedy a remediation record applies
	// ([RemedyQuarantine], [RemedyRelease], …) and Cause the signal that
	// triggered it.
	Remedy string `json:"remedy,omitempty"`
	Cause  string `json:"cause,omitempty"`
	// ArgsSHA256 is the hex SHA-256 of the canonical call arguments.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
	// TokenSHA256 ([TokenRef]) and TokenJTI refer to the token the call was
	// made with. The token itself is never recorded.
	TokenSHA256 string `json:"token_sha256,omitempty"`
	TokenJTI    string `json:"token_jti,omitempty"`
}

// Entry is a record and its index in the log.
type Entry struct {
	Index  int64
	Record Record
}

// ErrCredential is returned (wrapped) by [Log.Append] for a record in which
// a field looks like a JSON Web Token.
var ErrCredential = errors.New("audit: record contains what looks like a JSON Web Token; record a TokenRef or the jti instead")

// ErrInvalidRecord is returned (wrapped) for a record that breaks the
// field rules (missing action, unknown decision or outcome, too large).
var ErrInvalidRecord = errors.New("audit: invalid record")

// TokenRef returns the hex SHA-256 of token, the form in which a record
// refers to a token ([Record.TokenSHA256]).
func TokenRef(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// texts returns every text field of r with its JSON name.
func (r *Record) texts() []struct{ name, value string } {
	out := []struct{ name, value string }{
		{"agent", r.Agent}, {"agent_id", r.AgentID}, {"sub", r.Subject},
		{"action", r.Action}, {"resource", r.Resource}, {"decision", r.Decision},
		{"policy", r.Policy}, {"reason", r.Reason}, {"outcome", r.Outcome},
		{"error", r.Error}, {"task", r.Task}, {"txn", r.Txn},
		{"parent_task", r.ParentTask}, {"parent_txn", r.ParentTxn},
		{"attestation", r.Attestation}, {"risk", r.Risk}, {"remedy", r.Remedy},
		{"cause", r.Cause}, {"args_sha256", r.ArgsSHA256},
		{"token_sha256", r.TokenSHA256}, {"token_jti", r.TokenJTI},
	}
	for i, c := range r.Chain {
		out = append(out, struct{ name, value string }{fmt.Sprintf("chain[%d]", i), c})
	}
	return out
}

// Validate checks r as [Log.Append] does: Action is set, Decision and
// Outcome are known values or empty, and no field holds a JSON Web Token.
func (r *Record) Validate() error {
	if r.Action == "" {
		return fmt.Errorf("%w: empty action", ErrInvalidRecord)
	}
	switch r.Decision {
	case "", DecisionAllow, DecisionDeny, DecisionApprovalRequired:
	default:
		return fmt.Errorf("%w: unknown decision %q (want %s, %s or %s)", ErrInvalidRecord,
			r.Decision, DecisionAllow, DecisionDeny, DecisionApprovalRequired)
	}
	switch r.Outcome {
	case "", OutcomeOK, OutcomeError, OutcomeDenied:
	default:
		return fmt.Errorf("%w: unknown outcome %q (want %s, %s or %s)", ErrInvalidRecord,
			r.Outcome, OutcomeOK, OutcomeError, OutcomeDenied)
	}
	for _, f := range r.texts() {
		if containsJWT(f.value) {
			return fmt.Errorf("%w (field %s)", ErrCredential, f.name)
		}
	}
	return nil
}

// containsJWT reports whether s contains a compact JWS or JWE: a base64url
// segment that decodes to the start of a JSON object ("eyJ…"), a dot, and
// at least one more dot-separated base64url segment after a non-empty one.
func containsJWT(s string) bool {
	for i := 0; i+3 <= len(s); i++ {
		if s[i] != 'e' || s[i+1] != 'y' || s[i+2] != 'J' {
			continue
		}
		if i > 0 && isB64URL(s[i-1]) {
			continue // inside a longer segment, not a header start
		}
		if looksLikeJWTAt(s[i:]) {
			return true
		}
	}
	return false
}

func looksLikeJWTAt(s string) bool {
	header := b64Run(s)
	if len(header) < 8 || len(header) == len(s) || s[len(header)] != '.' {
		return false
	}
	dec, err := base64.RawURLEncoding.DecodeString(header[:len(header)/4*4])
	if err != nil || !bytes.HasPrefix(dec, []byte(`{"`)) {
		return false
	}
	rest := s[len(header)+1:]
	payload := b64Run(rest)
	if len(payload) == 0 || len(payload) == len(rest) || rest[len(payload)] != '.' {
		return false
	}
	return true // the third segment (signature) may be empty
}

func b64Run(s string) string {
	n := 0
	for n < len(s) && isB64URL(s[n]) {
		n++
	}
	return s[:n]
}

func isB64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// seqPrefix is how every encoded record starts before its Seq is set.
var seqPrefix = []byte(`{"seq":0,`)

// encodeRecord validates r and encodes it with Seq 0; withSeq sets the
// index later without encoding again.
func encodeRecord(r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	r.Seq = 0
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if !bytes.HasPrefix(data, seqPrefix) {
		return nil, fmt.Errorf("%w: unexpected encoding", ErrInvalidRecord)
	}
	if len(data)+20 > store.MaxValueLen {
		return nil, fmt.Errorf("%w: encoded record of %d bytes exceeds %d", ErrInvalidRecord, len(data), store.MaxValueLen)
	}
	return data, nil
}

// withSeq returns the encoding of a record encoded by encodeRecord with its
// Seq set to seq.
func withSeq(data []byte, seq int64) []byte {
	out := make([]byte, 0, len(data)+20)
	out = append(out, `{"seq":`...)
	out = strconv.AppendInt(out, seq, 10)
	return append(out, data[len(seqPrefix)-1:]...)
}

// decodeRecord decodes one stored record.
func decodeRecord(e store.Entry) (Record, error) {
	var r Record
	if err := json.Unmarshal(e.Data, &r); err != nil {
		return Record{}, fmt.Errorf("audit: record %d is not valid JSON: %w", e.Index, err)
	}
	return r, nil
}
