package txntoken_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/agenthost/agenthost/credentials/txntoken"
)

func TestObject(t *testing.T) {
	a, err := txntoken.ParseObject([]byte(`{ "b": [1, 2.50], "a": {"y": 1, "x": "é"} }`))
	if err != nil {
		t.Fatal(err)
	}
	b := mustObject(t, map[string]any{"a": map[string]any{"x": "é", "y": 1}, "b": []any{1, 2.5}})
	if a != b {
		t.Fatalf("objects differ: %s vs %s", a, b)
	}
	if a.String() != `{"a":{"x":"é","y":1},"b":[1,2.5]}` {
		t.Errorf("canonical form %s", a)
	}
	if raw, ok := a.Member("b"); !ok || string(raw) != `[1,2.5]` {
		t.Errorf("Member(b) = %s, %v", raw, ok)
	}
	if _, ok := a.Member("c"); ok {
		t.Errorf("Member(c) found")
	}
	if names := a.Names(); len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Errorf("Names() = %q", names)
	}
	var zero txntoken.Object
	if !zero.IsZero() || a.IsZero() || zero.Names() != nil {
		t.Errorf("IsZero wrong")
	}
	if _, ok := zero.Member("a"); ok {
		t.Errorf("zero object has a member")
	}

	// With replaces and adds; the receiver is unchanged.
	c, err := a.With(map[string]any{"b": 3, "c": true})
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != `{"a":{"x":"é","y":1},"b":3,"c":true}` || a != b {
		t.Errorf("With: %s (receiver %s)", c, a)
	}
	if d, err := zero.With(map[string]any{"k": "v"}); err != nil || d.String() != `{"k":"v"}` {
		t.Errorf("With on zero: %s, %v", d, err)
	}

	// JSON round trip, and omitted when zero.
	type holder struct {
		O txntoken.Object `json:"o,omitzero"`
	}
	out, err := json.Marshal(holder{O: a})
	if err != nil || string(out) != `{"o":{"a":{"x":"é","y":1},"b":[1,2.5]}}` {
		t.Fatalf("marshal: %s, %v", out, err)
	}
	var h holder
	if err := json.Unmarshal(out, &h); err != nil || h.O != a {
		t.Fatalf("unmarshal: %+v, %v", h, err)
	}
	if out, _ := json.Marshal(holder{}); string(out) != `{}` {
		t.Errorf("zero object marshalled as %s", out)
	}
}

func TestObjectRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"array":        `[1]`,
		"string":       `"x"`,
		"null":         `null`,
		"number":       `1`,
		"empty":        ``,
		"duplicate":    `{"a":1,"a":1}`,
		"not JSON":     `{a:1}`,
		"two objects":  `{}{}`,
		"deep nesting": deep(1000),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := txntoken.ParseObject([]byte(in)); !errors.Is(err, txntoken.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var o txntoken.Object
			if err := json.Unmarshal([]byte(`{"o":`+in+`}`), &struct {
				O *txntoken.Object `json:"o"`
			}{&o}); err == nil && in != "null" {
				t.Errorf("UnmarshalJSON accepted %s", in)
			}
		})
	}
}

func deep(n int) string {
	s := `{"a":`
	for i := 0; i < n; i++ {
		s += `[`
	}
	for i := 0; i < n; i++ {
		s += `]`
	}
	return s + `}`
}

func TestHeader(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   error
	}{
		{"one token", []string{"aaa.bbb.ccc"}, nil},
		{"absent", nil, txntoken.ErrNoToken},
		{"empty", []string{""}, txntoken.ErrNoToken},
		{"two header lines", []string{"aaa.bbb.ccc", "ddd.eee.fff"}, txntoken.ErrInvalid},
		{"two tokens in one line", []string{"aaa.bbb.ccc, ddd.eee.fff"}, txntoken.ErrInvalid},
		{"with a scheme", []string{"Bearer aaa.bbb.ccc"}, txntoken.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add(txntoken.HeaderName, v)
			}
			tok, err := txntoken.FromHeader(h)
			if tt.want == nil {
				if err != nil || tok != tt.values[0] {
					t.Fatalf("FromHeader = %q, %v", tok, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || tok != "" {
				t.Fatalf("FromHeader = %q, %v; want %v", tok, err, tt.want)
			}
		})
	}
	h := http.Header{}
	h.Add(txntoken.HeaderName, "old")
	txntoken.SetHeader(h, "aaa.bbb.ccc")
	if got := h.Values("Txn-Token"); len(got) != 1 || got[0] != "aaa.bbb.ccc" {
		t.Errorf("SetHeader left %q", got)
	}
}

func TestTokenHash(t *testing.T) {
	// SHA-256("abc"), base64url without padding (the WPT tth form).
	if got := txntoken.TokenHash("abc"); got != "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0" {
		t.Fatalf("TokenHash = %s", got)
	}
}
