package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/agenthost/agenthost/runtime/store"
)

// Rule names reported in a [Violation].
const (
	// RuleAllow: an executed call (an action of Rules.AllowActions with
	// outcome ok) had no allow decision.
	RuleAllow = "allow-before-call"
	// RuleToken: an executed call (an action of Rules.TokenActions with
	// outcome ok) had no token reference.
	RuleToken = "token-reference"
	// RuleApproval: an executed call on a resource of
	// Rules.ApprovalRequired had no earlier approval in its transaction.
	RuleApproval = "approval-before-call"
	// RuleQuarantine: a quarantined agent was allowed to act.
	RuleQuarantine = "quarantined-agent"
)

// Rules are the compliance rules [Check] replays the log against. The zero
// value applies the defaults.
type Rules struct {
	// AllowActions are the actions that must have an allow decision when
	// executed (outcome ok), on the record itself or on an earlier record of
	// the same transaction, action and resource. nil means
	// ["tool.call"]; an empty list disables the rule.
	AllowActions []string `json:"allow_actions"`
	// TokenActions are the actions that must carry a token reference
	// (token_sha256 or token_jti) when executed, on the record itself or
	// on its allow record. nil means ["tool.call"]; empty disables.
	TokenActions []string `json:"token_actions"`
	// ApprovalRequired lists resources whose executed calls (actions of
	// AllowActions) need an earlier approval in the same txn for the same
	// resource (or no resource): a record with action "approval" and
	// decision allow, or the call's allow decision naming its approval
	// and approver, as the host writes it.
	ApprovalRequired []string `json:"approval_required"`
	// IgnoreQuarantine disables the quarantine rule: between a remediation
	// record with remedy "quarantine" for an agent and one with remedy
	// "release", no record of that agent may carry decision allow.
	IgnoreQuarantine bool `json:"ignore_quarantine"`
}

// Violation is one breach of a rule.
type Violation struct {
	Index  int64  `json:"index"`
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

// String describes the violation.
func (v Violation) String() string {
	return fmt.Sprintf("record %d: %s: %s", v.Index, v.Rule, v.Detail)
}

// LoadRules reads rules from a JSON file (see the package doc for the
// format). Unknown fields and empty names are errors.
func LoadRules(path string) (Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Rules{}, fmt.Errorf("audit: load rules: %w", err)
	}
	return ParseRules(data)
}

// ParseRules parses rules in the format of [LoadRules].
func ParseRules(data []byte) (Rules, error) {
	var r Rules
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Rules{}, fmt.Errorf("audit: parse rules: %w", err)
	}
	if dec.More() {
		return Rules{}, errors.New("audit: parse rules: trailing data after the rules object")
	}
	for name, list := range map[string][]string{
		"allow_actions": r.AllowActions, "token_actions": r.TokenActions, "approval_required": r.ApprovalRequired,
	} {
		if slices.Contains(list, "") {
			return Rules{}, fmt.Errorf("audit: parse rules: empty name in %s", name)
		}
	}
	return r, nil
}

func orDefault(list []string) []string {
	if list == nil {
		return []string{ActionToolCall}
	}
	return list
}

// Check replays the audit log against rules and returns every violation,
// in log order.
func Check(ctx context.Context, log store.Log, rules Rules) ([]Violation, error) {
	if log == nil {
		return nil, errors.New("audit: check: nil log")
	}
	allowActions := orDefault(rules.AllowActions)
	tokenActions := orDefault(rules.TokenActions)
	// A call is known by its transaction and task (the tasks of one
	// transaction share its txn) and what it did.
	type callKey struct{ txn, task, action, resource string }
	allowed := make(map[callKey]bool)     // allow decisions seen -> with token reference
	approved := make(map[string][]string) // txn -> approved resources ("" = any)
	quarantined := make(map[string]int64) // agent name or id -> quarantine record
	var out []Violation
	add := func(i int64, rule, format string, args ...any) {
		out = append(out, Violation{Index: i, Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	ids := func(r *Record) []string {
		var s []string
		if r.Agent != "" {
			s = append(s, "name:"+r.Agent)
		}
		if r.AgentID != "" {
			s = append(s, "id:"+r.AgentID)
		}
		return s
	}
	err := each(ctx, log, func(e Entry) error {
		r, i := &e.Record, e.Index
		switch r.Action {
		case ActionRemediation:
			for _, id := range ids(r) {
				switch r.Remedy {
				case RemedyQuarantine:
					quarantined[id] = i
				case RemedyRelease:
					delete(quarantined, id)
				}
			}
			return nil
		case ActionApproval:
			if r.Decision == DecisionAllow && r.Txn != "" {
				approved[r.Txn] = append(approved[r.Txn], r.Resource)
			}
			return nil
		}
		// The host records an approval on the allow decision of the call
		// it approved (approval id and approver), before the call runs.
		if r.Decision == DecisionAllow && r.ApprovalID != "" && r.Approver != "" && r.Txn != "" && r.Outcome == "" {
			approved[r.Txn] = append(approved[r.Txn], r.Resource)
		}
		hasToken := r.TokenSHA256 != "" || r.TokenJTI != ""
		if !rules.IgnoreQuarantine && r.Decision == DecisionAllow {
			for _, id := range ids(r) {
				if q, ok := quarantined[id]; ok {
					add(i, RuleQuarantine, "agent %s was allowed %s on %q while quarantined by record %d", agentName(r), r.Action, r.Resource, q)
					break
				}
			}
		}
		key := callKey{r.Txn, r.Task, r.Action, r.Resource}
		if r.Decision == DecisionAllow && r.Txn != "" {
			allowed[key] = allowed[key] || hasToken
		}
		if r.Outcome != OutcomeOK {
			return nil
		}
		tokenOnAllow, allowedBefore := allowed[key]
		if r.Txn == "" {
			tokenOnAllow, allowedBefore = false, false
		}
		if slices.Contains(allowActions, r.Action) {
			if r.Decision != DecisionAllow && (r.Decision != "" || !allowedBefore) {
				d := r.Decision
				if d == "" {
					d = "none"
				}
				add(i, RuleAllow, "%s on %q by %s executed without an allow decision (decision %s)", r.Action, r.Resource, agentName(r), d)
			}
			if slices.Contains(rules.ApprovalRequired, r.Resource) {
				ok := false
				for _, res := range approved[r.Txn] {
					if res == "" || res == r.Resource {
						ok = true
						break
					}
				}
				if r.Txn == "" || !ok {
					add(i, RuleApproval, "%s on %q by %s executed without an earlier approval in txn %q", r.Action, r.Resource, agentName(r), r.Txn)
				}
			}
		}
		if slices.Contains(tokenActions, r.Action) && !hasToken && !tokenOnAllow {
			add(i, RuleToken, "%s on %q by %s executed without a token reference", r.Action, r.Resource, agentName(r))
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("audit: check: %w", err)
	}
	return out, nil
}

func agentName(r *Record) string {
	switch {
	case r.Agent != "":
		return r.Agent
	case r.AgentID != "":
		return r.AgentID
	}
	return "(unknown agent)"
}
