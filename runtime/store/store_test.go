package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConditionCheck(t *testing.T) {
	tests := []struct {
		cond    Condition
		exists  bool
		cur     int64
		wantErr bool
		str     string
	}{
		{Always, false, 0, false, "always"},
		{Always, true, 7, false, "always"},
		{Condition{}, true, 7, false, "always"},
		{IfAbsent, false, 0, false, "if absent"},
		{IfAbsent, true, 7, true, "if absent"},
		{IfVersion(7), true, 7, false, "if version 7"},
		{IfVersion(7), true, 8, true, "if version 7"},
		{IfVersion(7), false, 0, true, "if version 7"},
		{IfVersion(0), false, 0, true, "if version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			err := tt.cond.Check(tt.exists, tt.cur)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("Check(%v, %d) = %v, want error %v", tt.exists, tt.cur, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrConflict) {
				t.Fatalf("Check error %v does not wrap ErrConflict", err)
			}
			if s := tt.cond.String(); s != tt.str {
				t.Fatalf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantMsg string // empty: valid
	}{
		{"name ok", ValidateName("namespace", "oauth.clients"), ""},
		{"name empty", ValidateName("namespace", ""), "empty namespace"},
		{"name long", ValidateName("log", strings.Repeat("a", MaxNameLen+1)), "log of 129 bytes exceeds 128"},
		{"name at limit", ValidateName("log", strings.Repeat("a", MaxNameLen)), ""},
		{"key ok", ValidateKey("ключ/日本"), ""},
		{"key at limit", ValidateKey(strings.Repeat("a", MaxKeyLen)), ""},
		{"key long", ValidateKey(strings.Repeat("a", MaxKeyLen+1)), "key of 1025 bytes exceeds 1024"},
		{"key bad utf8", ValidateKey("a\xc3"), "key is not valid UTF-8"},
		{"key nul", ValidateKey("a\x00b"), "key contains a NUL byte"},
		{"prefix empty", ValidatePrefix("prefix", ""), ""},
		{"prefix nul", ValidatePrefix("prefix", "\x00"), "prefix contains a NUL byte"},
		{"value at limit", ValidateValue(make([]byte, MaxValueLen)), ""},
		{"value long", ValidateValue(make([]byte, MaxValueLen+1)), "value of 16777217 bytes exceeds 16777216"},
		{"limit zero", ValidateLimit(0), "limit 0 not in 1..10000"},
		{"limit negative", ValidateLimit(-1), "limit -1 not in 1..10000"},
		{"limit max", ValidateLimit(MaxLimit), ""},
		{"ttl zero record", ValidateTTL(0, false), ""},
		{"ttl zero lease", ValidateTTL(0, true), "ttl 0s must be positive"},
		{"ttl negative", ValidateTTL(-time.Second, false), "ttl -1s must be positive"},
		{"read negative", ValidateRead("log", -1, 10), "negative log index -1"},
		{"append none", ValidateAppend("log", nil), "append of 0 entries, want 1 to 10000"},
		{"append big entry", ValidateAppend("log", [][]byte{nil, make([]byte, MaxValueLen+1)}), "entry 1 of 16777217 bytes exceeds 16777216"},
		{"append ok", ValidateAppend("log", [][]byte{nil, {1}}), ""},
		{"list bad cursor", ValidateList("ns", "", "\xff", 1), "cursor is not valid UTF-8"},
		{"lease empty holder", ValidateLease("leader", "", time.Second), "empty holder"},
		{"lease ok", ValidateLease("leader", "host-a", time.Second), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantMsg == "" {
				if tt.err != nil {
					t.Fatalf("error = %v, want none", tt.err)
				}
				return
			}
			if !errors.Is(tt.err, ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", tt.err)
			}
			if want := "store: invalid argument: " + tt.wantMsg; tt.err.Error() != want {
				t.Fatalf("error = %q, want %q", tt.err, want)
			}
		})
	}
}
