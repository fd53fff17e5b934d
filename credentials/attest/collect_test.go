package attest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestCollectRejectsBadRequest(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		wantMsg string
	}{
		{name: "zero pid", req: Request{}, wantMsg: "pid 0 is not positive"},
		{name: "negative pid", req: Request{PID: -5}, wantMsg: "pid -5 is not positive"},
		{
			name:    "short expected digest",
			req:     Request{PID: os.Getpid(), ExpectedSHA256: "abcd"},
			wantMsg: "expected sha256: digest \"abcd\" has 4 hexadecimal digits, want 64",
		},
		{
			name:    "non-hex expected digest",
			req:     Request{PID: os.Getpid(), ExpectedSHA256: strings.Repeat("g", 64)},
			wantMsg: "non-hexadecimal character at offset 0",
		},
		{
			name:    "non-hex config digest",
			req:     Request{PID: os.Getpid(), ConfigDigest: "sha256:00"},
			wantMsg: "config digest: digest \"sha256:00\" has an odd number",
		},
		{
			name:    "config digest with separator",
			req:     Request{PID: os.Getpid(), ConfigDigest: "00:11"},
			wantMsg: "config digest: digest \"00:11\" has an odd number",
		},
		{
			name:    "config digest with space",
			req:     Request{PID: os.Getpid(), ConfigDigest: "00 011"},
			wantMsg: "non-hexadecimal character at offset 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Collect(context.Background(), tt.req)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Collect = %v, want ErrInvalidRequest", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Collect error %q does not contain %q", err, tt.wantMsg)
			}
			if ev != (Evidence{}) {
				t.Errorf("Collect returned evidence %+v with an error", ev)
			}
		})
	}
}

func TestCollectCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Collect(ctx, Request{PID: os.Getpid()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Collect = %v, want context.Canceled", err)
	}
}
