package localapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fakePinned is a fakeAudit that also verifies with a caller's key and
// checkpoint.
type fakePinned struct {
	*fakeAudit
	got []AuditVerifyRequest
}

func (f *fakePinned) AuditVerifyPinned(ctx context.Context, req AuditVerifyRequest) (AuditVerifyResult, error) {
	f.got = append(f.got, req)
	if req.VerifierKey == "bad" {
		return AuditVerifyResult{}, fmt.Errorf("%w: the key does not parse", ErrBadVerifyRequest)
	}
	res, err := f.AuditVerify(ctx)
	res.VerifierKey = req.VerifierKey
	return res, err
}

func TestAuditVerifyPinned(t *testing.T) {
	f := &fakePinned{fakeAudit: newFakeAudit()}
	path := serve(t, f)
	c := NewClient(path)
	ctx := context.Background()

	req := AuditVerifyRequest{VerifierKey: "agenthost-audit/x+01020304+AAAA", Checkpoint: "agenthost-audit/x\n3\nAQID\n\n— sig\n"}
	res, err := c.AuditVerifyPinned(ctx, req)
	if err != nil || res.VerifierKey != req.VerifierKey || len(f.got) != 1 || f.got[0] != req {
		t.Fatalf("AuditVerifyPinned = %+v, %v; the backend got %+v", res, err, f.got)
	}
	// Without a body, the host's own verification.
	if res, err := c.AuditVerify(ctx); err != nil || res.VerifierKey != "vkey" || len(f.got) != 1 {
		t.Fatalf("AuditVerify = %+v, %v", res, err)
	}
	if _, err := c.AuditVerifyPinned(ctx, AuditVerifyRequest{VerifierKey: "bad"}); err == nil || !strings.Contains(err.Error(), "does not parse") {
		t.Fatalf("a bad key: %v", err)
	}

	tests := []struct {
		name, body string
		wantCode   int
		wantErr    string
	}{
		{"bad key", `{"verifier_key": "bad"}`, 400, "invalid audit verification request"},
		{"not JSON", `{`, 400, "invalid verification request"},
		{"unknown field", `{"verifierkey": "k"}`, 400, "verifierkey"},
		{"trailing data", `{} {}`, 400, "data after the request object"},
		{"too large", `{"checkpoint": "` + strings.Repeat("a", maxVerifyBody) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, path, "POST", "/v1/audit/verify", tt.body)
			if code != tt.wantCode || !strings.Contains(body, tt.wantErr) || !strings.HasPrefix(body, `{"error":`) {
				t.Fatalf("%d %s; want %d and %q", code, body, tt.wantCode, tt.wantErr)
			}
		})
	}

	// A host that cannot verify with a pinned key says so rather than
	// verifying with its own.
	c = NewClient(serve(t, newFakeAudit()))
	if _, err := c.AuditVerifyPinned(ctx, req); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("AuditVerifyPinned on a host without it: %v", err)
	}
}
