package txntoken_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and
// anything it accepts must be a complete Txn-Token.
func FuzzVerify(f *testing.F) {
	testKeys(f)
	iss := newIssuer(f, nil)
	tok, _, err := iss.Mint(context.Background(), request(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(signJOSE(f, key, testKID, jose.TypAccessToken, rawClaims()))
	f.Add(signJOSE(f, key, testKID, jose.TypTxnToken, rawClaims()))
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	opts := verifyOpts(f)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := txntoken.Verify(context.Background(), token, opts)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		if c.Txn == "" || c.Subject == "" || c.Scope == "" || c.RequestingWorkload == "" || c.Audience != testTD {
			t.Fatalf("accepted incomplete claims %+v", c)
		}
	})
}

// FuzzArgsDigest checks the canonical form: it never panics, accepts only
// valid JSON, and canonicalising twice changes nothing.
func FuzzArgsDigest(f *testing.F) {
	for _, s := range []string{testArgs, `{"a":[1,2.50,{"b":null}]}`, `"x"`, `1e3`, `{"a":"\ud83d\ude00"}`, `[]`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := txntoken.ArgsDigest(data)
		if err != nil {
			return
		}
		if len(bytes.TrimSpace(data)) > 0 && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		o, err := txntoken.ParseObject(data)
		if err != nil {
			return
		}
		again, err := txntoken.ParseObject([]byte(o.String()))
		if err != nil || again != o {
			t.Fatalf("canonical form not stable: %s → %s (%v)", o, again, err)
		}
		if d2, err := txntoken.ArgsDigest(json.RawMessage(o.String())); err != nil || d2 != d {
			t.Fatalf("digest of canonical form differs: %s vs %s (%v)", d2, d, err)
		}
	})
}
