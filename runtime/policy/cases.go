package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Case is one recorded decision test: a request and the effect (and
// optionally the determining policies) it must produce.
type Case struct {
	Name    string  `json:"name"`
	Request Request `json:"request"`
	// Expect is "allow", "deny" or "approval_required".
	Expect Effect `json:"expect"`
	// Policies, when set, must equal the decision's determining policy IDs
	// (in any order).
	Policies []string `json:"policies,omitempty"`
}

// CaseResult is the outcome of one [Case].
type CaseResult struct {
	Name string
	Pass bool
	// Why explains a failure ("" on a pass).
	Why string
	// Got is the decision the Decider returned.
	Got Decision
	// Err is the error the Decider returned, if any.
	Err error
}

// maxCasesFile bounds the size of a cases file.
const maxCasesFile = 16 << 20

// LoadCases reads a JSON cases file: either an array of cases or an object
// {"cases": [...]}. Unknown fields are errors, so a misspelt key does not
// silently weaken a test.
func LoadCases(path string) ([]Case, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCasesFile+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read cases: %w", err)
	}
	if len(data) > maxCasesFile {
		return nil, fmt.Errorf("policy: %s: larger than %d bytes", path, maxCasesFile)
	}
	cases, err := parseCases(data)
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", path, err)
	}
	return cases, nil
}

// ParseCases parses the contents of a cases file (see [LoadCases]).
func ParseCases(data []byte) ([]Case, error) {
	cases, err := parseCases(data)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return cases, nil
}

// caseJSON is the file form of a Case; Expect is a pointer so that a
// missing expectation is an error rather than "deny".
type caseJSON struct {
	Name     string   `json:"name"`
	Request  Request  `json:"request"`
	Expect   *Effect  `json:"expect"`
	Policies []string `json:"policies,omitempty"`
}

func parseCases(data []byte) ([]Case, error) {
	trimmed := bytes.TrimSpace(data)
	var raw []caseJSON
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var doc struct {
			Cases []caseJSON `json:"cases"`
		}
		if err := decodeStrict(trimmed, &doc); err != nil {
			return nil, err
		}
		raw = doc.Cases
	} else if err := decodeStrict(trimmed, &raw); err != nil {
		return nil, err
	}
	cases := make([]Case, len(raw))
	seen := map[string]bool{}
	for i, c := range raw {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("case %d has no name", i)
		case seen[c.Name]:
			return nil, fmt.Errorf("duplicate case name %q", c.Name)
		case c.Expect == nil:
			return nil, fmt.Errorf("case %q has no expect", c.Name)
		}
		seen[c.Name] = true
		cases[i] = Case{Name: c.Name, Request: c.Request, Expect: *c.Expect, Policies: c.Policies}
	}
	return cases, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// RunCases runs every case against d, in order. A case passes when the
// decision's effect is the expected one, its determining policies match
// when the case lists them, and Decide returned no error (an error is a
// failure even when the expected effect is deny).
func RunCases(ctx context.Context, d Decider, cases []Case) []CaseResult {
	out := make([]CaseResult, 0, len(cases))
	for _, c := range cases {
		got, err := d.Decide(ctx, c.Request)
		res := CaseResult{Name: c.Name, Got: got, Err: err}
		switch {
		case err != nil:
			res.Why = "decide failed: " + err.Error()
		case got.Effect != c.Expect:
			res.Why = fmt.Sprintf("expected %s, got %s (%s)", c.Expect, got.Effect, got.Reason)
		case c.Policies != nil && !sameSet(c.Policies, got.Policies):
			res.Why = fmt.Sprintf("expected policies [%s], got [%s]",
				strings.Join(sorted(c.Policies), ", "), strings.Join(sorted(got.Policies), ", "))
		default:
			res.Pass = true
		}
		out = append(out, res)
	}
	return out
}

func sorted(ss []string) []string {
	c := slices.Clone(ss)
	slices.Sort(c)
	return slices.Compact(c)
}

func sameSet(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }
