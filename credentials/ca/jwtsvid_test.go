package ca

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
)

// TestValidateJWTSVIDFrom: a JWT-SVID of any trust domain in the source
// validates with that domain's keys only; tokens of other domains, tokens
// whose subject lies in another domain than the signing key's, and tokens
// of a domain whose bundle has no keys are refused.
func TestValidateJWTSVIDFrom(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(t0)
	a := newTestCA(t, clock.Now, nil)
	b, err := New(ctx, Config{TrustDomain: "b.test", Journal: &MemoryJournal{}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := New(ctx, Config{TrustDomain: "stranger.test", Journal: &MemoryJournal{}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	set := spiffebundle.NewSet(a.Bundle(), b.Bundle())
	bID := mustID(t, "spiffe://b.test/agent/x")
	exp := t0.Add(time.Hour).Unix()

	fromB, _, err := b.NewJWTSVID(ctx, bID, []string{"aud"})
	if err != nil {
		t.Fatal(err)
	}
	fromStranger, _, err := stranger.NewJWTSVID(ctx, mustID(t, "spiffe://stranger.test/x"), []string{"aud"})
	if err != nil {
		t.Fatal(err)
	}
	ak := a.current().state.kinds[kindJWT].current
	bk := b.current().state.kinds[kindJWT].current
	// A's key signing a subject of B: B's bundle does not hold A's key.
	crossDomain, err := jose.Sign(ctx, ak.key, ak.kid, jose.TypJWT, map[string]any{"sub": bID.String(), "aud": "aud", "exp": exp})
	if err != nil {
		t.Fatal(err)
	}
	// B's key naming B's subject last and A's first: the key is chosen by
	// the last sub, and the duplicate member refuses the token.
	dupSub, err := jose.Sign(ctx, bk.key, bk.kid, jose.TypJWT,
		json.RawMessage(fmt.Sprintf(`{"sub":"spiffe://example.org/agent/a","aud":"aud","exp":%d,"sub":%q}`, exp, bID)))
	if err != nil {
		t.Fatal(err)
	}
	// A differently spelled member is not the sub claim.
	upperSub, err := jose.Sign(ctx, bk.key, bk.kid, jose.TypJWT, map[string]any{"SUB": bID.String(), "aud": "aud", "exp": exp})
	if err != nil {
		t.Fatal(err)
	}
	notSPIFFE, err := jose.Sign(ctx, bk.key, bk.kid, jose.TypJWT, map[string]any{"sub": "https://b.test/x", "aud": "aud", "exp": exp})
	if err != nil {
		t.Fatal(err)
	}
	emptyB := spiffebundle.New(b.TrustDomain())

	tests := []struct {
		name  string
		token string
		src   *spiffebundle.Set
		aud   string
		want  []error
	}{
		{"federated domain", fromB, set, "aud", nil},
		{"wrong audience", fromB, set, "other", []error{ErrInvalidToken, jose.ErrAudience}},
		{"unknown domain", fromStranger, set, "aud", []error{ErrInvalidToken, jose.ErrUnknownKey, credentials.ErrUntrustedDomain}},
		{"key of another domain", crossDomain, set, "aud", []error{ErrInvalidToken, jose.ErrUnknownKey}},
		{"duplicate sub", dupSub, set, "aud", []error{ErrInvalidToken, jose.ErrMalformed}},
		{"sub spelled otherwise", upperSub, set, "aud", []error{ErrInvalidToken, jose.ErrMissingClaim}},
		{"sub not a SPIFFE ID", notSPIFFE, set, "aud", []error{ErrInvalidToken, jose.ErrUnknownKey}},
		{"domain keys revoked", fromB, spiffebundle.NewSet(a.Bundle(), emptyB), "aud", []error{ErrInvalidToken, jose.ErrUnknownKey}},
		{"garbage", "a.b.c", set, "aud", []error{ErrInvalidToken, jose.ErrMalformed}},
		{"no audience", fromB, set, "", []error{ErrInvalidArgument}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, claims, err := ValidateJWTSVIDFrom(ctx, tt.token, tt.aud, tt.src, clock.Now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateJWTSVIDFrom: %v", err)
				}
				if id != bID || claims["sub"] != bID.String() {
					t.Fatalf("got %v, %v", id, claims)
				}
				return
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Fatalf("err = %v, want %v", err, w)
				}
			}
		})
	}
	if _, _, err := ValidateJWTSVIDFrom(ctx, fromB, "aud", nil, clock.Now); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil source: err = %v", err)
	}
	clock.Set(t0.Add(2 * time.Hour))
	if _, _, err := ValidateJWTSVIDFrom(ctx, fromB, "aud", set, clock.Now); !errors.Is(err, jose.ErrExpired) {
		t.Errorf("expired: err = %v", err)
	}
}
