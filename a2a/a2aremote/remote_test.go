package a2aremote_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aremote"
	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

const issuer = "https://as.example"

// remote is a hosted agent served by a2aserver over httptest: the remote
// agent the client calls.
type remote struct {
	t       *testing.T
	asKey   *ecdsa.PrivateKey
	cardKey *ecdsa.PrivateKey
	http    *httptest.Server
	release chan struct{}

	mu        sync.Mutex
	audiences []string
}

func newRemote(t *testing.T) *remote {
	r := &remote{t: t, release: make(chan struct{})}
	r.asKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r.cardKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	r.http = httptest.NewServer(mux)
	t.Cleanup(r.http.Close)
	keys := jose.StaticKeys(map[string]crypto.PublicKey{"as-1": r.asKey.Public()})
	srv, err := a2aserver.New(context.Background(), a2aserver.Config{
		BaseURL: r.http.URL,
		Agents:  []a2acard.AgentInfo{{Name: "research", Description: "Finds papers"}},
		Runner:  a2aserver.RunnerFunc(r.run),
		Authenticator: func(agent, resourceURL, metadataURL string) (a2aserver.Authenticator, error) {
			return resource.New(resource.Config{Resource: resourceURL, MetadataURL: metadataURL, Issuer: issuer, Keys: keys})
		},
		AuthServer: &oauth.ServerMetadata{Issuer: issuer, TokenEndpoint: issuer + "/token"},
		CardKey: func(context.Context, string) (a2acard.Key, error) {
			return a2acard.Key{Signer: r.cardKey, KID: "card-1"}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.Mount(mux)
	return r
}

func (r *remote) run(ctx context.Context, req *a2aserver.Request, emit func(a2aserver.Event) error) (string, error) {
	switch req.Input {
	case "hello":
		_ = emit(a2aserver.Event{Kind: a2aserver.EventStatus, Text: "looking"})
		_ = emit(a2aserver.Event{Kind: a2aserver.EventText, Text: "Hello, "})
		_ = emit(a2aserver.Event{Kind: a2aserver.EventText, Text: req.Caller.Subject})
		return "", nil
	case "approve":
		_ = emit(a2aserver.Event{Kind: a2aserver.EventApproval, Text: "Approve the payment", URL: "https://as.example/approve/7"})
		select {
		case <-r.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "paid", nil
	case "ask":
		if len(req.History) == 0 {
			return "", a2aserver.InputRequired("Which paper?")
		}
	case "needauth":
		return "", a2aserver.AuthRequired("Sign in to the bank", "https://bank.example/login")
	case "denied":
		return "", a2aserver.Failed("denied by policy")
	case "block":
		_ = emit(a2aserver.Event{Kind: a2aserver.EventStatus, Text: "waiting"})
		<-ctx.Done()
		return "", ctx.Err()
	}
	return "got " + req.Input, nil
}

func (r *remote) agentURL() string { return r.http.URL + "/a2a/research" }

// tokens is the TokenSource: a token for the audience asked for.
func (r *remote) tokens(ctx context.Context, audience string) (string, error) {
	r.mu.Lock()
	r.audiences = append(r.audiences, audience)
	r.mu.Unlock()
	now := time.Now()
	return jose.Sign(ctx, r.asKey, "as-1", jose.TypAccessToken, oauth.AccessTokenClaims{
		Issuer: issuer, Subject: "alice", Audience: oauth.Audience{audience}, ClientID: "host",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), ID: now.Format(time.RFC3339Nano),
	})
}

func (r *remote) cardKeys(context.Context, string) (jose.KeyFunc, error) {
	return jose.StaticKeys(map[string]crypto.PublicKey{"card-1": r.cardKey.Public()}), nil
}

func (r *remote) client(mutate ...func(*a2aremote.Config)) *a2aremote.Client {
	cfg := a2aremote.Config{HTTPClient: r.http.Client(), AllowHTTP: true, AllowPrivate: true, CardKeys: r.cardKeys, RequireSignedCards: true}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := a2aremote.New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func TestSendAndStream(t *testing.T) {
	r := newRemote(t)
	c := r.client()
	ctx := context.Background()
	card, err := c.FetchCard(ctx, r.agentURL())
	if err != nil {
		t.Fatal(err)
	}
	if card.Verified == nil || card.Verified.KeyID != "card-1" || card.Endpoint != r.agentURL() ||
		card.Source != a2aremote.CardURL(r.agentURL()) {
		t.Fatalf("card %+v", card)
	}

	res, err := c.Send(ctx, card, r.tokens, a2aremote.NewTextMessage("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if res.State != a2a.TaskStateCompleted || res.Text != "Hello, alice" {
		t.Fatalf("result %s %q", res.State, res.Text)
	}
	if len(r.audiences) != 1 || r.audiences[0] != r.agentURL() {
		t.Fatalf("tokens asked for %v", r.audiences)
	}

	var updates []string
	res, err = c.Stream(ctx, card, r.tokens, a2aremote.NewTextMessage("hello"), func(u a2aremote.Update) error {
		updates = append(updates, string(u.Kind)+":"+u.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(updates, "|"); got != "status:looking|text:Hello, |text:alice" || res.Text != "Hello, alice" {
		t.Fatalf("updates %s, result %q", got, res.Text)
	}

	got, err := c.GetTask(ctx, card, r.tokens, string(res.Task.ID))
	if err != nil || got.State != a2a.TaskStateCompleted {
		t.Fatalf("GetTask: %+v %v", got, err)
	}
}

func TestApprovalStream(t *testing.T) {
	r := newRemote(t)
	c := r.client()
	ctx := context.Background()
	card, err := c.FetchCard(ctx, r.agentURL())
	if err != nil {
		t.Fatal(err)
	}
	var approval *a2aremote.Update
	res, err := c.Stream(ctx, card, r.tokens, a2aremote.NewTextMessage("approve"), func(u a2aremote.Update) error {
		if u.Kind == a2aremote.UpdateApproval {
			approval = &u
			r.release <- struct{}{}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if approval == nil || approval.URL != "https://as.example/approve/7" || !strings.HasPrefix(approval.Text, "Approve the payment") || res.Text != "paid" {
		t.Fatalf("approval %+v, result %+v", approval, res)
	}

	// message/send returns as soon as the approval is needed: the host
	// surfaces it, then polls.
	_, err = c.Send(ctx, card, r.tokens, a2aremote.NewTextMessage("approve"))
	var ar *a2aremote.AuthRequiredError
	if !errors.As(err, &ar) || ar.URL != "https://as.example/approve/7" || ar.TaskID == "" {
		t.Fatalf("err = %v", err)
	}
	r.release <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := c.GetTask(ctx, card, r.tokens, ar.TaskID)
		if err == nil && res.Text == "paid" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not done: %+v %v", res, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTaskStates(t *testing.T) {
	r := newRemote(t)
	c := r.client()
	ctx := context.Background()
	card, err := c.FetchCard(ctx, r.agentURL())
	if err != nil {
		t.Fatal(err)
	}

	_, err = c.Send(ctx, card, r.tokens, a2aremote.NewTextMessage("ask"))
	var ir *a2aremote.InputRequiredError
	if !errors.As(err, &ir) || ir.Message != "Which paper?" || ir.TaskID == "" || !errors.Is(err, a2aremote.ErrInputRequired) {
		t.Fatalf("err = %v", err)
	}
	answer := a2aremote.NewTextMessage("A2A")
	answer.TaskID, answer.ContextID = a2a.TaskID(ir.TaskID), ir.ContextID
	res, err := c.Send(ctx, card, r.tokens, answer)
	if err != nil || res.Text != "got A2A" {
		t.Fatalf("answer: %+v %v", res, err)
	}

	_, err = c.Send(ctx, card, r.tokens, a2aremote.NewTextMessage("needauth"))
	var ar *a2aremote.AuthRequiredError
	if !errors.As(err, &ar) || ar.URL != "https://bank.example/login" || !strings.HasPrefix(ar.Message, "Sign in to the bank") {
		t.Fatalf("err = %v", err)
	}
	_, err = c.Stream(ctx, card, r.tokens, a2aremote.NewTextMessage("needauth"), func(a2aremote.Update) error { return nil })
	if !errors.As(err, &ar) {
		t.Fatalf("stream: err = %v", err)
	}

	_, err = c.Send(ctx, card, r.tokens, a2aremote.NewTextMessage("denied"))
	var te *a2aremote.TaskError
	if !errors.As(err, &te) || te.State != a2a.TaskStateFailed || te.Message != "denied by policy" {
		t.Fatalf("err = %v", err)
	}

	// A task of someone else: the remote's not found comes through.
	if _, err := c.GetTask(ctx, card, r.tokens, "no-such-task"); !errors.Is(err, a2a.ErrTaskNotFound) {
		t.Fatalf("GetTask: %v", err)
	}

	// Cancel a running task: the stream ends with the task canceled.
	_, err = c.Stream(ctx, card, r.tokens, a2aremote.NewTextMessage("block"), func(u a2aremote.Update) error {
		if u.Kind == a2aremote.UpdateStatus {
			return c.CancelTask(ctx, card, r.tokens, u.TaskID)
		}
		return nil
	})
	if !errors.As(err, &te) || te.State != a2a.TaskStateCanceled {
		t.Fatalf("canceled task: %v", err)
	}
}

func TestTokenSourceErrors(t *testing.T) {
	r := newRemote(t)
	c := r.client()
	ctx := context.Background()
	card, err := c.FetchCard(ctx, r.agentURL())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("exchange refused")
	if _, err := c.Send(ctx, card, func(context.Context, string) (string, error) { return "", boom }, a2aremote.NewTextMessage("x")); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Send(ctx, card, func(context.Context, string) (string, error) { return "a b", nil }, a2aremote.NewTextMessage("x")); err == nil {
		t.Fatal("a malformed token was sent")
	}
	// A token for another audience is refused by the agent (401).
	other := func(ctx context.Context, _ string) (string, error) { return r.tokens(ctx, r.http.URL+"/a2a/other") }
	if _, err := c.Send(ctx, card, other, a2aremote.NewTextMessage("x")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Send(ctx, &a2aremote.Card{}, r.tokens, a2aremote.NewTextMessage("x")); !errors.Is(err, a2aremote.ErrCard) {
		t.Fatalf("card not from FetchCard: %v", err)
	}
}

func TestApprovalURLKey(t *testing.T) {
	if a2aremote.MetadataApprovalURL != a2aserver.MetadataApprovalURL {
		t.Fatalf("%q != %q", a2aremote.MetadataApprovalURL, a2aserver.MetadataApprovalURL)
	}
}

// cardServer serves whatever card body it is given at the card path of
// /a2a/x, and redirects from /moved to target.
func cardServer(t *testing.T, body func(base string) []byte, target string) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/moved"):
			http.Redirect(w, r, target, http.StatusFound)
		case r.URL.Path == "/a2a/x"+a2aremote.CardPath:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body(srv.URL))
		case r.URL.Path == "/a2a/x":
			w.Header().Set("Location", target)
			w.WriteHeader(http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func signedCard(t *testing.T, key crypto.Signer, url string, mutate func(*a2a.AgentCard)) []byte {
	t.Helper()
	c, err := a2acard.New(a2acard.AgentInfo{Name: "x", Description: "X"}, a2acard.Options{URL: url, TokenURL: issuer + "/token"})
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if err := a2acard.Sign(context.Background(), c, a2acard.Key{Signer: key, KID: "card-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if mutate != nil {
		mutate(c)
	}
	b, _ := json.Marshal(c)
	return b
}

func TestFetchCardRefuses(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := func(context.Context, string) (jose.KeyFunc, error) {
		return jose.StaticKeys(map[string]crypto.PublicKey{"card-1": key.Public()}), nil
	}
	elsewhere := cardServer(t, func(base string) []byte { return signedCard(t, key, base+"/a2a/x", nil) }, "")
	tests := []struct {
		name   string
		body   func(base string) []byte
		path   string
		config func(*a2aremote.Config)
		want   error
	}{
		{"unsigned when required", func(base string) []byte { return signedCard(t, nil, base+"/a2a/x", nil) }, "/a2a/x", nil, a2acard.ErrUnsigned},
		{"skill description changed", func(base string) []byte {
			return signedCard(t, key, base+"/a2a/x", func(c *a2a.AgentCard) { c.Skills[0].Description = "changed" })
		}, "/a2a/x", nil, a2acard.ErrSignature},
		{"url changed", func(base string) []byte {
			return signedCard(t, key, base+"/a2a/x", func(c *a2a.AgentCard) { c.URL = "https://evil.example/a2a/x" })
		}, "/a2a/x", nil, a2acard.ErrSignature},
		{"bad signature though not required", func(base string) []byte {
			return signedCard(t, key, base+"/a2a/x", func(c *a2a.AgentCard) { c.Name = "Y" })
		}, "/a2a/x", func(c *a2aremote.Config) { c.RequireSignedCards = false }, a2acard.ErrSignature},
		{"another key", func(base string) []byte {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return signedCard(t, other, base+"/a2a/x", nil)
		}, "/a2a/x", nil, a2acard.ErrSignature},
		{"unverified card naming another origin", func(base string) []byte {
			return signedCard(t, nil, "https://evil.example/a2a/x", nil)
		}, "/a2a/x", func(c *a2aremote.Config) { c.RequireSignedCards = false; c.CardKeys = nil }, a2aremote.ErrCard},
		{"endpoint of another scheme", func(base string) []byte {
			return signedCard(t, nil, base+"/a2a/x", func(c *a2a.AgentCard) { c.URL = "ftp" + strings.TrimPrefix(c.URL, "http") })
		}, "/a2a/x", func(c *a2aremote.Config) { c.RequireSignedCards = false; c.CardKeys = nil }, a2aremote.ErrCard},
		{"no JSON-RPC interface", func(base string) []byte {
			return signedCard(t, nil, base+"/a2a/x", func(c *a2a.AgentCard) {
				c.PreferredTransport = a2a.TransportProtocolGRPC
				c.AdditionalInterfaces = nil
			})
		}, "/a2a/x", func(c *a2aremote.Config) { c.RequireSignedCards = false; c.CardKeys = nil }, a2aremote.ErrCard},
		{"not a card", func(string) []byte { return []byte(`{"url": 7}`) }, "/a2a/x", nil, a2aremote.ErrCard},
		{"not JSON", func(string) []byte { return []byte(`<html>`) }, "/a2a/x", nil, fetch.ErrBadJSON},
		{"too large", func(base string) []byte {
			return signedCard(t, key, base+"/a2a/x", func(c *a2a.AgentCard) { c.Description = strings.Repeat("x", 4096) })
		}, "/a2a/x", func(c *a2aremote.Config) { c.MaxCardBytes = 2048 }, fetch.ErrTooLarge},
		{"redirect to another origin", nil, "/moved", nil, fetch.ErrRedirect},
		{"http without AllowHTTP", nil, "/a2a/x", func(c *a2aremote.Config) { c.AllowHTTP = false }, fetch.ErrInvalidURL},
		{"loopback without AllowPrivate", nil, "/a2a/x", func(c *a2aremote.Config) { c.AllowPrivate = false }, fetch.ErrPrivateAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = func(base string) []byte { return signedCard(t, key, base+"/a2a/x", nil) }
			}
			srv := cardServer(t, body, elsewhere.URL+"/a2a/x"+a2aremote.CardPath)
			cfg := a2aremote.Config{HTTPClient: srv.Client(), AllowHTTP: true, AllowPrivate: true, CardKeys: keys, RequireSignedCards: true}
			if tt.config != nil {
				tt.config(&cfg)
			}
			c, err := a2aremote.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.FetchCard(context.Background(), srv.URL+tt.path); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchCardAccepts(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := func(context.Context, string) (jose.KeyFunc, error) {
		return jose.StaticKeys(map[string]crypto.PublicKey{"card-1": key.Public()}), nil
	}
	// A verified card may name an endpoint on another origin: its signer
	// vouches for it.
	srv := cardServer(t, func(string) []byte { return signedCard(t, key, "https://agents.example/a2a/x", nil) }, "")
	c, _ := a2aremote.New(a2aremote.Config{HTTPClient: srv.Client(), AllowHTTP: true, AllowPrivate: true, CardKeys: keys, RequireSignedCards: true})
	card, err := c.FetchCard(context.Background(), srv.URL+"/a2a/x"+a2aremote.CardPath)
	if err != nil || card.Endpoint != "https://agents.example/a2a/x" || card.Verified == nil {
		t.Fatalf("card %+v, %v", card, err)
	}
	// Unsigned and not required: accepted, unverified.
	srv = cardServer(t, func(base string) []byte { return signedCard(t, nil, base+"/a2a/x", nil) }, "")
	c, _ = a2aremote.New(a2aremote.Config{HTTPClient: srv.Client(), AllowHTTP: true, AllowPrivate: true, CardKeys: keys})
	card, err = c.FetchCard(context.Background(), srv.URL+"/a2a/x")
	if err != nil || card.Verified != nil || card.Endpoint != srv.URL+"/a2a/x" {
		t.Fatalf("card %+v, %v", card, err)
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := a2aremote.New(a2aremote.Config{RequireSignedCards: true}); !errors.Is(err, a2aremote.ErrInvalidConfig) {
		t.Fatalf("RequireSignedCards without CardKeys: %v", err)
	}
	if _, err := a2aremote.New(a2aremote.Config{MaxCardBytes: -1}); !errors.Is(err, a2aremote.ErrInvalidConfig) {
		t.Fatalf("negative limit: %v", err)
	}
}

// TestCallsFollowNoRedirect: an endpoint that redirects does not get the
// call replayed (with the token) elsewhere; a response over the cap is
// refused.
func TestCallLimits(t *testing.T) {
	var sawToken sync.Map
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawToken.Store(r.Header.Get("Authorization"), true)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"kind":"message","messageId":"m","role":"agent","parts":[{"kind":"text","text":"hi"}]}}`))
	}))
	t.Cleanup(target.Close)
	big := strings.Repeat("x", 4096)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a2a/x" + a2aremote.CardPath:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(signedCard(t, nil, srv.URL+"/a2a/x", nil))
		case "/a2a/x":
			http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
		case "/a2a/big" + a2aremote.CardPath:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(signedCard(t, nil, srv.URL+"/a2a/big", nil))
		case "/a2a/big":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"kind":"message","messageId":"m","role":"agent","parts":[{"kind":"text","text":"` + big + `"}]}}`))
		}
	}))
	t.Cleanup(srv.Close)
	c, _ := a2aremote.New(a2aremote.Config{HTTPClient: srv.Client(), AllowHTTP: true, AllowPrivate: true, MaxResponseBytes: 1024})
	ctx := context.Background()
	tok := func(context.Context, string) (string, error) { return "secret-token", nil }

	card, err := c.FetchCard(ctx, srv.URL+"/a2a/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, card, tok, a2aremote.NewTextMessage("x")); err == nil {
		t.Fatal("a redirected call succeeded")
	}
	sawToken.Range(func(k, _ any) bool {
		t.Fatalf("the redirect target got %v", k)
		return false
	})

	card, err = c.FetchCard(ctx, srv.URL+"/a2a/big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, card, tok, a2aremote.NewTextMessage("x")); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized response: %v", err)
	}
}
