package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// ActionUnaccounted is written by the log itself, never by a caller:
	// when it is opened (or recovers from a failed write) and finds
	// records after the last signed checkpoint that it cannot account
	// for, it declares them in a record of this action whose Unaccounted
	// range names them. Signatures covering that record do not vouch for
	// those records, and [Verify] reports them as uncovered.
	ActionUnaccounted = "audit.unaccounted"
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

// Sources of a task's subject ([Record.SubjectSource]).
const (
	// SubjectSourceToken: the user started the task with their own access
	// token, which the host verified; the subject is the token's sub.
	SubjectSourceToken = "token"
	// SubjectSourceOperator: the operator named the user (`agenthost run
	// --for USER`); no credential of the user was presented.
	SubjectSourceOperator = "operator"
	// SubjectSourceTxnToken: the subject is the sub of the verified
	// Txn-Token that came with a call between hosted agents.
	SubjectSourceTxnToken = "txn_token"
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
// ([TokenRef]) or their jti. Text that looks like a JSON Web Token is not
// written: [Log.Append] replaces it with a marker naming the token's
// SHA-256 ("[redacted: jwt sha256:<first 16 hex digits>]"), lists the
// field in Redacted and writes the record.
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
	// SubjectSource says how the host learned Subject when a task
	// started: [SubjectSourceToken] (the user's own access token, verified
	// by the host) or [SubjectSourceOperator] (asserted by the operator,
	// `agenthost run --for`). Empty when there is no subject, or the
	// record is not a task's.
	SubjectSource string `json:"subject_source,omitempty"`
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
	// BinarySHA256 is the measured SHA-256 of the agent's running
	// executable when the decision was made (its attestation evidence).
	BinarySHA256 string `json:"binary_sha256,omitempty"`
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
	// ApprovalID names the CIBA approval a call needed (the SHA-256 of
	// its auth_req_id, never the auth_req_id), and Approver the user who
	// approved it.
	ApprovalID string `json:"approval_id,omitempty"`
	Approver   string `json:"approver,omitempty"`
	// Redacted names the fields (their JSON names; "chain[1]" for an
	// element of Chain) in which Append replaced a token by a marker.
	Redacted []string `json:"redacted,omitempty"`
	// Unaccounted, on a record of [ActionUnaccounted] the log wrote, is
	// the range of records it found and does not vouch for. Append
	// ignores a value set by the caller.
	Unaccounted *Range `json:"unaccounted,omitempty"`
}

// Range is the records from index From up to, not including, index To.
type Range struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// String describes the range ("record 5", "records 5 to 9").
func (r Range) String() string {
	if r.To == r.From+1 {
		return fmt.Sprintf("record %d", r.From)
	}
	return fmt.Sprintf("records %d to %d", r.From, r.To-1)
}

// Entry is a record and its index in the log.
type Entry struct {
	Index  int64
	Record Record
}

// ErrInvalidRecord is returned (wrapped) for a record that breaks the
// field rules (missing action, unknown decision or outcome, too large).
var ErrInvalidRecord = errors.New("audit: invalid record")

// TokenRef returns the hex SHA-256 of token, the form in which a record
// refers to a token ([Record.TokenSHA256]).
func TokenRef(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// textField is a text field of a record and its JSON name.
type textField struct {
	name  string
	value *string
}

// texts returns the text fields of r but Chain and Redacted, with their
// JSON names.
func (r *Record) texts() [25]textField {
	return [...]textField{
		{"agent", &r.Agent}, {"agent_id", &r.AgentID}, {"sub", &r.Subject}, {"subject_source", &r.SubjectSource},
		{"action", &r.Action}, {"resource", &r.Resource}, {"decision", &r.Decision},
		{"policy", &r.Policy}, {"reason", &r.Reason}, {"outcome", &r.Outcome},
		{"error", &r.Error}, {"task", &r.Task}, {"txn", &r.Txn},
		{"parent_task", &r.ParentTask}, {"parent_txn", &r.ParentTxn},
		{"attestation", &r.Attestation}, {"risk", &r.Risk}, {"remedy", &r.Remedy},
		{"cause", &r.Cause}, {"args_sha256", &r.ArgsSHA256},
		{"token_sha256", &r.TokenSHA256}, {"token_jti", &r.TokenJTI},
		{"approval_id", &r.ApprovalID}, {"approver", &r.Approver}, {"binary_sha256", &r.BinarySHA256},
	}
}

// redact replaces every JSON Web Token in r's text by its marker and
// notes the fields in r.Redacted. A slice of r is copied before it is
// changed, so the caller's record is left as it was; a record without a
// token costs a scan of its text and nothing else.
func (r *Record) redact() {
	var fields []string
	for _, f := range r.texts() {
		if red, ok := redactJWTs(*f.value); ok {
			*f.value = red
			fields = append(fields, f.name)
		}
	}
	redactList := func(list []string, name string) []string {
		copied := false
		for i, v := range list {
			red, ok := redactJWTs(v)
			if !ok {
				continue
			}
			if !copied {
				list, copied = slices.Clone(list), true
			}
			list[i] = red
			fields = append(fields, fmt.Sprintf("%s[%d]", name, i))
		}
		return list
	}
	r.Chain = redactList(r.Chain, "chain")
	redacted := redactList(r.Redacted, "redacted")
	if len(fields) == 0 {
		return
	}
	r.Redacted = slices.Clip(redacted) // appending below copies it
	for _, f := range fields {
		if !slices.Contains(r.Redacted, f) {
			r.Redacted = append(r.Redacted, f)
		}
	}
}

// Validate checks r as [Log.Append] does: Action is set, and Decision and
// Outcome are known values or empty. (Tokens in its text do not make a
// record invalid: Append redacts them.)
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
	return nil
}

// redactJWTs replaces each compact JWS or JWE in s by its marker,
// "[redacted: jwt sha256:<first 16 hex digits of the token's SHA-256>]",
// and reports whether it replaced any. A token is a base64url segment
// that decodes to the start of a JSON object ("eyJ…"), a dot, a non-empty
// base64url segment, a dot and the (possibly empty) signature; a JWE's
// further segments, up to five in all, are part of it.
func redactJWTs(s string) (string, bool) {
	var b strings.Builder
	last, found := 0, false
	for i := 0; i+3 <= len(s); i++ {
		if s[i] != 'e' || s[i+1] != 'y' || s[i+2] != 'J' {
			continue
		}
		if i > 0 && isB64URL(s[i-1]) {
			continue // inside a longer segment, not a header start
		}
		n := jwtLenAt(s[i:])
		if n == 0 {
			continue
		}
		sum := sha256.Sum256([]byte(s[i : i+n]))
		b.WriteString(s[last:i])
		b.WriteString("[redacted: jwt sha256:")
		b.WriteString(hex.EncodeToString(sum[:8]))
		b.WriteString("]")
		last, found = i+n, true
		i += n - 1
	}
	if !found {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// jwtLenAt returns the length of the JSON Web Token s starts with, or 0.
func jwtLenAt(s string) int {
	header := b64Run(s)
	if len(header) < 8 || len(header) == len(s) || s[len(header)] != '.' {
		return 0
	}
	dec, err := base64.RawURLEncoding.DecodeString(header[:len(header)/4*4])
	if err != nil || !bytes.HasPrefix(dec, []byte(`{"`)) {
		return 0
	}
	n := len(header) + 1
	payload := b64Run(s[n:])
	if len(payload) == 0 || n+len(payload) == len(s) || s[n+len(payload)] != '.' {
		return 0
	}
	n += len(payload) + 1
	n += len(b64Run(s[n:])) // the signature, possibly empty
	// A JWE has five segments: take the further ones.
	for range 2 {
		if n >= len(s) || s[n] != '.' {
			break
		}
		n++
		n += len(b64Run(s[n:]))
	}
	return n
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

// encodeRecord validates r, redacts the tokens in its text and encodes it
// with Seq 0; withSeq sets the index later without encoding again.
func encodeRecord(r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	r.redact()
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
