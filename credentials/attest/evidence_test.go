package attest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	digestA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// sampleEvidence returns valid evidence with every field set.
func sampleEvidence() Evidence {
	return Evidence{
		Path:         "/opt/agents/echo",
		SHA256:       digestA,
		PID:          4242,
		UID:          1000,
		GID:          100,
		ConfigDigest: "0123abcd",
		CollectedAt:  time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC),
		Size:         1 << 20,
		ModTime:      time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Unlinked:     true,
	}
}

func TestEvidenceJSON(t *testing.T) {
	tests := []struct {
		name string
		ev   Evidence
		want string
	}{
		{
			name: "all fields",
			ev:   sampleEvidence(),
			want: `{"path":"/opt/agents/echo","sha256":"` + digestA + `","pid":4242,"uid":1000,"gid":100,` +
				`"config_digest":"0123abcd","collected_at":"2026-03-04T05:06:07.89Z","size":1048576,` +
				`"mod_time":"2026-03-01T00:00:00Z","unlinked":true}`,
		},
		{
			name: "optional fields empty",
			ev: func() Evidence {
				e := sampleEvidence()
				e.ConfigDigest = ""
				e.Unlinked = false
				return e
			}(),
			want: `{"path":"/opt/agents/echo","sha256":"` + digestA + `","pid":4242,"uid":1000,"gid":100,` +
				`"collected_at":"2026-03-04T05:06:07.89Z","size":1048576,"mod_time":"2026-03-01T00:00:00Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(data) != tt.want {
				t.Errorf("Marshal:\n got %s\nwant %s", data, tt.want)
			}
			var back Evidence
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(tt.ev, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if err := back.Validate(); err != nil {
				t.Errorf("Validate after round trip: %v", err)
			}
		})
	}
}

func TestEvidenceValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Evidence)
		wantMsg string // empty: valid
	}{
		{name: "valid", mutate: func(*Evidence) {}},
		{name: "no config digest", mutate: func(e *Evidence) { e.ConfigDigest = "" }},
		{name: "uid zero", mutate: func(e *Evidence) { e.UID, e.GID = 0, 0 }},
		{name: "empty path", mutate: func(e *Evidence) { e.Path = "" }, wantMsg: "empty path"},
		{name: "zero pid", mutate: func(e *Evidence) { e.PID = 0 }, wantMsg: "pid 0 is not positive"},
		{name: "negative uid", mutate: func(e *Evidence) { e.UID = -1 }, wantMsg: "uid -1 is negative"},
		{name: "negative gid", mutate: func(e *Evidence) { e.GID = -2 }, wantMsg: "gid -2 is negative"},
		{name: "negative size", mutate: func(e *Evidence) { e.Size = -1 }, wantMsg: "size -1 is negative"},
		{name: "zero time", mutate: func(e *Evidence) { e.CollectedAt = time.Time{} }, wantMsg: "collection time is zero"},
		{name: "empty sha256", mutate: func(e *Evidence) { e.SHA256 = "" }, wantMsg: "sha256: empty digest"},
		{name: "short sha256", mutate: func(e *Evidence) { e.SHA256 = "abcd" }, wantMsg: "has 4 hexadecimal digits, want 64"},
		{name: "uppercase sha256", mutate: func(e *Evidence) { e.SHA256 = strings.ToUpper(digestA) }, wantMsg: "lowercase hexadecimal digit at offset 0"},
		{name: "non-hex config digest", mutate: func(e *Evidence) { e.ConfigDigest = "01xz" }, wantMsg: "config digest: digest \"01xz\" has a character other than a lowercase hexadecimal digit at offset 2"},
		{name: "odd config digest", mutate: func(e *Evidence) { e.ConfigDigest = "abc" }, wantMsg: "odd number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEvidence()
			tt.mutate(&e)
			err := e.Validate()
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidEvidence) {
				t.Fatalf("Validate = %v, want ErrInvalidEvidence", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Validate = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*Evidence)
		policy   Policy
		wantErrs []error // every error the result must match; nil: pass
		notErrs  []error // errors the result must not match
		wantMsgs []string
	}{
		{name: "zero policy", policy: Policy{}},
		{
			name:   "all checks pass",
			policy: Policy{SHA256: digestA, UIDs: []int{0, 1000}, ConfigDigest: "0123abcd"},
		},
		{
			name:   "uppercase policy digests",
			policy: Policy{SHA256: strings.ToUpper(digestA), ConfigDigest: "0123ABCD"},
		},
		{
			name:     "digest mismatch",
			policy:   Policy{SHA256: digestB, UIDs: []int{1000}},
			wantErrs: []error{ErrDigestMismatch},
			notErrs:  []error{ErrUIDNotAllowed, ErrConfigMismatch},
			wantMsgs: []string{"sha256 " + digestA + ", policy requires " + digestB},
		},
		{
			name:     "uid not allowed",
			policy:   Policy{SHA256: digestA, UIDs: []int{0, 1001}},
			wantErrs: []error{ErrUIDNotAllowed},
			notErrs:  []error{ErrDigestMismatch, ErrConfigMismatch},
			wantMsgs: []string{"runs as uid 1000, policy allows [0 1001]"},
		},
		{
			name:     "config mismatch",
			policy:   Policy{ConfigDigest: "ffff"},
			wantErrs: []error{ErrConfigMismatch},
			notErrs:  []error{ErrDigestMismatch, ErrUIDNotAllowed},
			wantMsgs: []string{"evidence has 0123abcd, policy requires ffff"},
		},
		{
			name:     "config required but absent",
			mutate:   func(e *Evidence) { e.ConfigDigest = "" },
			policy:   Policy{ConfigDigest: "ffff"},
			wantErrs: []error{ErrConfigMismatch},
			wantMsgs: []string{"evidence has none"},
		},
		{
			name:     "every check fails",
			policy:   Policy{SHA256: digestB, UIDs: []int{0}, ConfigDigest: "ffff"},
			wantErrs: []error{ErrDigestMismatch, ErrUIDNotAllowed, ErrConfigMismatch},
		},
		{
			name:     "invalid evidence",
			mutate:   func(e *Evidence) { e.SHA256 = "zz" },
			policy:   Policy{SHA256: digestA},
			wantErrs: []error{ErrInvalidEvidence},
			notErrs:  []error{ErrDigestMismatch},
		},
		{
			name:     "invalid policy digest",
			policy:   Policy{SHA256: "abc"},
			wantErrs: []error{ErrInvalidPolicy},
			notErrs:  []error{ErrDigestMismatch},
			wantMsgs: []string{"has 3 hexadecimal digits, want 64"},
		},
		{
			name:     "invalid policy config digest",
			policy:   Policy{ConfigDigest: "12-4"},
			wantErrs: []error{ErrInvalidPolicy},
			wantMsgs: []string{"non-hexadecimal character at offset 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEvidence()
			if tt.mutate != nil {
				tt.mutate(&e)
			}
			err := Verify(e, tt.policy)
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Verify passed, want an error")
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("Verify = %v, want it to match %v", err, want)
				}
			}
			for _, not := range tt.notErrs {
				if errors.Is(err, not) {
					t.Errorf("Verify = %v, want it not to match %v", err, not)
				}
			}
			for _, msg := range tt.wantMsgs {
				if !strings.Contains(err.Error(), msg) {
					t.Errorf("Verify = %q, want it to contain %q", err, msg)
				}
			}
		})
	}
}
