package policy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go"
)

// Annotations the engine interprets.
const (
	// AnnotationID names a policy; without it the ID is "<file>:<index>".
	AnnotationID = "id"
	// AnnotationApproval with the value "required" on a permit turns an
	// Allow it determines into ApprovalRequired.
	AnnotationApproval = "approval"
	// AnnotationReason gives the Reason of decisions the policy determines.
	AnnotationReason = "reason"
)

// Config configures [New].
type Config struct {
	// Dir is the directory whose *.cedar files make up the policy set.
	Dir string
	// Logger receives reload events; nil discards them.
	Logger *slog.Logger
}

// Engine is the Cedar policy engine. It is safe for concurrent use:
// Decide may run while Reload swaps the policy set.
type Engine struct {
	dir string
	log *slog.Logger

	reloadMu sync.Mutex
	cur      atomic.Pointer[policySet]

	principals, resources entityCache
}

var _ Decider = (*Engine)(nil)

// entry is one loaded policy and what the engine needs to know about it.
type entry struct {
	id       cedar.PolicyID
	policy   *cedar.Policy
	forbid   bool
	approval bool
	reason   string
}

// policySet is an immutable loaded policy set.
type policySet struct {
	entries []entry // sorted by ID
	byID    map[cedar.PolicyID]*entry
	version string
}

// All implements cedar.PolicyIterator in ID order.
func (s *policySet) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for i := range s.entries {
			if !yield(s.entries[i].id, s.entries[i].policy) {
				return
			}
		}
	}
}

// Load returns an engine for the *.cedar files in dir.
func Load(dir string) (*Engine, error) {
	return New(Config{Dir: dir})
}

// New returns an engine for cfg.Dir, loading it once. A directory without
// policies is valid and denies everything.
func New(cfg Config) (*Engine, error) {
	if cfg.Dir == "" {
		return nil, errors.New("policy: no policy directory")
	}
	e := &Engine{dir: cfg.Dir, log: cfg.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	s, err := loadDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if len(s.entries) == 0 {
		e.log.Warn("policy set is empty: every request is denied", slog.String("dir", cfg.Dir))
	}
	e.cur.Store(s)
	return e, nil
}

// Reload re-reads the directory and swaps the policy set in one step. On
// any error the set in force stays and the error is returned.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("policy: reload: %w", err)
	}
	s, err := loadDir(e.dir)
	if err != nil {
		e.log.WarnContext(ctx, "policy reload failed; keeping the current set",
			slog.String("version", e.Version()), slog.Any("error", err))
		return err
	}
	old := e.cur.Swap(s)
	e.log.InfoContext(ctx, "policy set reloaded",
		slog.String("old_version", old.version), slog.String("version", s.version),
		slog.Int("policies", len(s.entries)))
	return nil
}

// Version identifies the policy set in force: "sha256:<hex>" over the
// names and contents of its files.
func (e *Engine) Version() string { return e.cur.Load().version }

// PolicyIDs returns the IDs of the policies in force, sorted.
func (e *Engine) PolicyIDs() []string {
	s := e.cur.Load()
	ids := make([]string, len(s.entries))
	for i := range s.entries {
		ids[i] = string(s.entries[i].id)
	}
	return ids
}

// ParseError reports a policy file that is not valid Cedar. Its message
// names the file and the line and column of the fault.
type ParseError struct {
	File string
	// Line and Column locate the fault, 0 when the parser gave no position.
	Line, Column int
	Err          error
}

var parsePos = regexp.MustCompile(`^(?:parser error: )?(?:parse error at )?<input>:(\d+):(\d+):? ?(.*)$`)

func newParseError(file string, err error) *ParseError {
	pe := &ParseError{File: file, Err: err}
	if m := parsePos.FindStringSubmatch(err.Error()); m != nil {
		pe.Line, _ = strconv.Atoi(m[1])
		pe.Column, _ = strconv.Atoi(m[2])
	}
	return pe
}

// Error implements error.
func (e *ParseError) Error() string {
	if m := parsePos.FindStringSubmatch(e.Err.Error()); m != nil {
		return fmt.Sprintf("policy: %s:%s:%s: parse error: %s", e.File, m[1], m[2], m[3])
	}
	return "policy: " + e.File + ": " + e.Err.Error()
}

// Unwrap returns the parser's error.
func (e *ParseError) Unwrap() error { return e.Err }

// loadDir parses every *.cedar file of dir in name order.
func loadDir(dir string) (*policySet, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policy: read policy directory: %w", err)
	}
	var names []string
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".cedar") {
			continue
		}
		// Follow symbolic links (mounted configuration often uses them);
		// directories and devices named *.cedar are skipped.
		fi, err := os.Stat(filepath.Join(dir, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if fi.Mode().IsRegular() {
			names = append(names, de.Name())
		}
	}
	slices.Sort(names)

	h := sha256.New()
	s := &policySet{byID: map[cedar.PolicyID]*entry{}}
	where := map[cedar.PolicyID]string{}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], uint64(len(data)))
		h.Write(n[:])
		h.Write(data)

		list, err := cedar.NewPolicyListFromBytes(name, data)
		if err != nil {
			return nil, newParseError(name, err)
		}
		for i, p := range list {
			pos := p.Position()
			at := fmt.Sprintf("%s:%d", name, pos.Line)
			ann := p.Annotations()
			id := cedar.PolicyID(fmt.Sprintf("%s:%d", name, i))
			if v, ok := ann[AnnotationID]; ok {
				if v == "" {
					return nil, fmt.Errorf("policy: %s: empty @id annotation", at)
				}
				id = cedar.PolicyID(v)
			}
			if prev, dup := where[id]; dup {
				return nil, fmt.Errorf("policy: %s: duplicate policy id %q (first at %s)", at, id, prev)
			}
			where[id] = at
			ent := entry{id: id, policy: p, forbid: p.Effect() == cedar.Forbid, reason: string(ann[AnnotationReason])}
			if v, ok := ann[AnnotationApproval]; ok {
				if v != "required" {
					return nil, fmt.Errorf("policy: %s: @approval must be \"required\", not %q", at, v)
				}
				if ent.forbid {
					return nil, fmt.Errorf("policy: %s: @approval is only meaningful on a permit", at)
				}
				ent.approval = true
			}
			s.entries = append(s.entries, ent)
		}
	}
	slices.SortFunc(s.entries, func(a, b entry) int { return strings.Compare(string(a.id), string(b.id)) })
	for i := range s.entries {
		s.byID[s.entries[i].id] = &s.entries[i]
	}
	s.version = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// Decide implements [Decider]. An invalid request is denied and the error,
// wrapping [ErrInvalidRequest], is returned.
func (e *Engine) Decide(ctx context.Context, r Request) (Decision, error) {
	s := e.cur.Load()
	if err := ctx.Err(); err != nil {
		return Decision{Effect: Deny, Reason: "request cancelled", Version: s.version}, fmt.Errorf("policy: %w", err)
	}
	req, ents, err := e.build(r)
	if err != nil {
		return Decision{Effect: Deny, Reason: "invalid request", Version: s.version}, err
	}
	dec, diag := cedar.Authorize(s, ents, req)
	return s.decision(r, dec, diag), nil
}

// decision maps Cedar's answer to a Decision.
//
// A forbid that fails to evaluate denies (Cedar itself would skip it): a
// guard the engine could not check must not let a call through.
func (s *policySet) decision(r Request, dec cedar.Decision, diag cedar.Diagnostic) Decision {
	d := Decision{Version: s.version}
	var failedForbids []string
	if len(diag.Errors) > 0 {
		d.Errors = make([]PolicyError, len(diag.Errors))
		for i, pe := range diag.Errors {
			d.Errors[i] = PolicyError{Policy: string(pe.PolicyID), Message: pe.Message}
			if ent := s.byID[pe.PolicyID]; ent != nil && ent.forbid {
				failedForbids = append(failedForbids, string(pe.PolicyID))
			}
		}
		slices.SortFunc(d.Errors, func(a, b PolicyError) int { return strings.Compare(a.Policy, b.Policy) })
		slices.Sort(failedForbids)
	}
	if len(diag.Reasons) > 0 {
		d.Policies = make([]string, len(diag.Reasons))
		for i, rs := range diag.Reasons {
			d.Policies[i] = string(rs.PolicyID)
		}
		slices.Sort(d.Policies)
	}
	switch {
	case dec == cedar.Deny && len(d.Policies) > 0:
		d.Effect = Deny
		d.Reason = s.reason(d.Policies, "forbidden by "+strings.Join(d.Policies, ", "))
	case dec == cedar.Deny:
		d.Effect = Deny
		d.Reason = fmt.Sprintf("no policy permits %s on %s", r.Action, r.Resource)
		if len(failedForbids) > 0 {
			d.Reason += "; forbid " + strings.Join(failedForbids, ", ") + " failed to evaluate"
		}
	case len(failedForbids) > 0:
		d.Effect = Deny
		d.Policies = failedForbids
		d.Reason = "forbid " + strings.Join(failedForbids, ", ") + " failed to evaluate"
	default:
		var approvers []string
		for _, id := range d.Policies {
			if s.byID[cedar.PolicyID(id)].approval {
				approvers = append(approvers, id)
			}
		}
		if len(approvers) > 0 {
			d.Effect = ApprovalRequired
			d.Reason = s.reason(approvers, "approval required by "+strings.Join(approvers, ", "))
		} else {
			d.Effect = Allow
			d.Reason = s.reason(d.Policies, "permitted by "+strings.Join(d.Policies, ", "))
		}
	}
	return d
}

// reason returns the @reason of the first of ids that has one, else def.
func (s *policySet) reason(ids []string, def string) string {
	for _, id := range ids {
		if ent := s.byID[cedar.PolicyID(id)]; ent != nil && ent.reason != "" {
			return ent.reason
		}
	}
	return def
}
