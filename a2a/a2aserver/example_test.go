package a2aserver_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// The host serves its agents at its origin: each agent's JSON-RPC
// endpoint, card and RFC 9728 metadata. A call needs an access token for
// the agent's URL; the Runner sees who called.
func Example() {
	ctx := context.Background()
	const origin = "https://host.example"
	asKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the authorization server's
	keys := jose.StaticKeys(map[string]crypto.PublicKey{"as-1": asKey.Public()})

	srv, err := a2aserver.New(ctx, a2aserver.Config{
		BaseURL: origin,
		Agents:  []a2acard.AgentInfo{{Name: "research", Description: "Finds papers", Scopes: []string{"agent:research"}}},
		Runner: a2aserver.RunnerFunc(func(ctx context.Context, req *a2aserver.Request, emit func(a2aserver.Event) error) (string, error) {
			return fmt.Sprintf("3 papers on %s, for %s", req.Input, req.Caller.Subject), nil
		}),
		Authenticator: func(agent, resourceURL, metadataURL string) (a2aserver.Authenticator, error) {
			return resource.New(resource.Config{Resource: resourceURL, MetadataURL: metadataURL, Issuer: origin, Keys: keys})
		},
		AuthServer: &oauth.ServerMetadata{Issuer: origin, TokenEndpoint: origin + "/token"},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	srv.Mount(mux)
	agentURL, _ := srv.AgentURL("research")
	fmt.Println(agentURL)

	serve := func(method, url, auth, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, url, strings.NewReader(body))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}

	var card a2a.AgentCard
	_ = json.Unmarshal(serve("GET", agentURL+"/.well-known/agent-card.json", "", "").Body.Bytes(), &card)
	fmt.Println(card.URL, card.PreferredTransport, card.ProtocolVersion)

	const send = `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":` +
		`{"kind":"message","messageId":"m1","role":"user","parts":[{"kind":"text","text":"A2A"}]}}}`
	w := serve("POST", agentURL, "", send)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))

	now := time.Now()
	tok, _ := jose.Sign(ctx, asKey, "as-1", jose.TypAccessToken, oauth.AccessTokenClaims{
		Issuer: origin, Subject: "alice", Audience: oauth.Audience{agentURL}, ClientID: "cli", ID: "t1",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), Scope: "agent:research",
	})
	var resp struct{ Result a2a.Task }
	_ = json.Unmarshal(serve("POST", agentURL, "Bearer "+tok, send).Body.Bytes(), &resp)
	fmt.Println(resp.Result.Status.State, resp.Result.Artifacts[0].Parts[0].(a2a.TextPart).Text)
	// Output:
	// https://host.example/a2a/research
	// https://host.example/a2a/research JSONRPC 0.3.0
	// 401 Bearer resource_metadata="https://host.example/.well-known/oauth-protected-resource/a2a/research"
	// completed 3 papers on A2A, for alice
}
