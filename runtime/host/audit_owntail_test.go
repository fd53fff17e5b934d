package host

import (
	"testing"

	"github.com/agenthost/agenthost/runtime/audit"
)

// TestOwnTail: online verification lets pass only the records the host
// committed after the checkpoint it took, never records the log declared
// unaccounted, nor records beyond what the host committed.
func TestOwnTail(t *testing.T) {
	uncovered := func(covered, size int64, ranges ...audit.Range) audit.Report {
		return audit.Report{Size: size, Covered: covered, Uncovered: ranges,
			Problem: &audit.Problem{Kind: audit.ProblemUncovered, Index: ranges[0].From}}
	}
	tests := []struct {
		name              string
		rep               audit.Report
		signed, committed int64
		want              bool
	}{
		{"the host's own tail", uncovered(10, 12, audit.Range{From: 10, To: 12}), 10, 12, true},
		{"a tail beyond what the host committed", uncovered(10, 13, audit.Range{From: 10, To: 13}), 10, 12, false},
		{"a tail before the checkpoint", uncovered(8, 12, audit.Range{From: 8, To: 12}), 10, 12, false},
		{"records declared unaccounted after the checkpoint", uncovered(12, 12, audit.Range{From: 10, To: 11}), 10, 12, false},
		{"declared records and a tail", uncovered(12, 14, audit.Range{From: 10, To: 11}, audit.Range{From: 12, To: 14}), 10, 14, false},
		{"another problem", audit.Report{Size: 12, Covered: 10, Uncovered: []audit.Range{{From: 10, To: 12}},
			Problem: &audit.Problem{Kind: audit.ProblemRecord, Index: 11}}, 10, 12, false},
		{"no problem", audit.Report{Size: 12, Covered: 12}, 12, 12, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownTail(tt.rep, tt.signed, tt.committed); got != tt.want {
				t.Errorf("ownTail = %v, want %v", got, tt.want)
			}
		})
	}
}
