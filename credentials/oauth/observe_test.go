package oauth_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestClientOnCache: every Token call reports whether the cache answered
// it: the first is a miss (a token is acquired), the next a hit, one after
// Forget a miss again.
func TestClientOnCache(t *testing.T) {
	e := newAS(t, false)
	id := spiffeid.RequireFromString("spiffe://example.org/agent/research")
	var hits, misses atomic.Int32
	c, err := oauth.NewClient(oauth.ClientConfig{
		ClientID: id.String(),
		Assertion: func(ctx context.Context, aud string) (string, error) {
			tok, _, err := e.ca.NewJWTSVID(ctx, id, []string{aud})
			return tok, err
		},
		OnCache: func(hit bool) {
			if hit {
				hits.Add(1)
			} else {
				misses.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := oauth.TokenRequest{Server: e.md, Resource: notes, Scopes: []string{"notes:read"}}
	steps := []struct {
		name         string
		forget       bool
		hits, misses int32
	}{
		{"first call acquires", false, 0, 1},
		{"second call is cached", false, 1, 1},
		{"third call is cached", false, 2, 1},
		{"after Forget", true, 2, 2},
	}
	for _, s := range steps {
		if s.forget {
			c.Forget(req)
		}
		if _, err := c.Token(ctx, req); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if hits.Load() != s.hits || misses.Load() != s.misses {
			t.Errorf("%s: %d hits, %d misses; want %d, %d", s.name, hits.Load(), misses.Load(), s.hits, s.misses)
		}
	}
}
