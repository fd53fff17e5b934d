package wimse_test

// Interoperability with the trust domain's CA: WIT-SVIDs minted by
// credentials/ca and its published bundle. Only this test file imports ca
// (DESIGN.md §3 restricts the package, not its tests).

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/wimse"
)

func TestCAWITSVID(t *testing.T) {
	ctx := context.Background()
	authority, err := ca.New(ctx, ca.Config{TrustDomain: testTD, Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatalf("ca.New: %v", err)
	}
	id := spiffeid.RequireFromString(testSubject)
	wit, key, _, err := authority.NewWITSVID(ctx, id)
	if err != nil {
		t.Fatalf("NewWITSVID: %v", err)
	}
	keys, err := wimse.WITAuthorityKeys(authority.BundleJSON())
	if err != nil {
		t.Fatalf("WITAuthorityKeys: %v", err)
	}
	v, err := wimse.NewVerifier(wimse.Config{
		TrustDomains: map[string]wimse.Authority{testTD: {Keys: keys, Issuer: "spiffe://" + testTD}},
		BaseURL:      testBase,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := v.VerifyWIT(ctx, wit)
	if err != nil {
		t.Fatalf("VerifyWIT of a CA-minted WIT-SVID: %v", err)
	}
	if w.Subject.String() != testSubject || w.KeyID == "" || w.ID == "" {
		t.Errorf("WIT %+v", w)
	}

	t.Run("WPT", func(t *testing.T) {
		wpt, err := wimse.MintWPT(ctx, key, wit, testTarget, wimse.WPTOptions{AccessToken: testAccessToken})
		if err != nil {
			t.Fatalf("MintWPT: %v", err)
		}
		r := httptest.NewRequest(http.MethodPost, "/tools/call", nil)
		r.Header.Set(wimse.HeaderWIT, wit)
		r.Header.Set(wimse.HeaderWPT, wpt)
		r.Header.Set("Authorization", "Bearer "+testAccessToken)
		p, err := v.Verify(r)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if p.Identity().String() != testSubject {
			t.Errorf("peer %s", p.Identity())
		}
	})
	t.Run("HTTP signature", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/tools/call", nil)
		if err := wimse.SignRequest(ctx, r, wit, key, wimse.SignOptions{Audience: testTarget}); err != nil {
			t.Fatalf("SignRequest: %v", err)
		}
		if _, err := v.Verify(r); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("a JWT-SVID is not a WIT", func(t *testing.T) {
		svid, _, err := authority.NewJWTSVID(ctx, id, []string{testTarget})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyWIT(ctx, svid); !errors.Is(err, wimse.ErrInvalidWIT) {
			t.Fatalf("err = %v, want ErrInvalidWIT", err)
		}
	})
	t.Run("a WIT from a CA the bundle does not hold", func(t *testing.T) {
		other, err := ca.New(ctx, ca.Config{TrustDomain: testTD, Journal: &ca.MemoryJournal{}})
		if err != nil {
			t.Fatal(err)
		}
		rogue, _, _, err := other.NewWITSVID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyWIT(ctx, rogue); !errors.Is(err, wimse.ErrSignature) {
			t.Fatalf("err = %v, want ErrSignature", err)
		}
	})
}
