package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/store/asstore"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// Flows the harness drives.
const (
	FlowClientCredentials = "client_credentials"
	FlowTokenExchange     = "token_exchange"
)

const (
	trustDomain = "load.example"
	resourceURI = "https://tools.load.example/mcp"
	clientID    = "load-client"
)

var agentIdentity = credentials.MustParseIdentity("spiffe://load.example/agent/loader")

// Harness is an authorization server on SQLite behind a loopback HTTP
// listener, with a private_key_jwt client and an agent.
type Harness struct {
	store  *sqlitestore.Store
	audit  *audit.Log
	ca     *ca.CA
	srv    *authserver.Server
	http   *http.Server
	ln     net.Listener
	issuer string
	key    *ecdsa.PrivateKey
	client *http.Client
}

// NewHarness builds the server with its database in dir. With audited,
// every issued token is first recorded in a tamper-evident audit log in
// the same database, as the host does.
func NewHarness(ctx context.Context, dir string, audited bool) (*Harness, error) {
	st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: filepath.Join(dir, "as.db")})
	if err != nil {
		return nil, err
	}
	h := &Harness{store: st}
	if h.ca, err = ca.New(ctx, ca.Config{TrustDomain: "spiffe://" + trustDomain, Journal: &ca.MemoryJournal{}}); err != nil {
		h.Close()
		return nil, err
	}
	if h.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		h.Close()
		return nil, err
	}
	jwks, err := jose.MarshalKeySet([]jose.SetKey{{KID: "load-1", Key: h.key.Public(), Alg: string(jose.ES256), Use: "sig"}})
	if err != nil {
		h.Close()
		return nil, err
	}
	if h.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		h.Close()
		return nil, err
	}
	h.issuer = "http://" + h.ln.Addr().String()
	var onIssue func(context.Context, authserver.Issued) error
	if audited {
		if h.audit, err = openAudit(ctx, st); err != nil {
			h.Close()
			return nil, err
		}
		onIssue = func(ctx context.Context, it authserver.Issued) error {
			_, err := h.audit.Append(ctx, audit.Record{Action: audit.ActionTokenIssue, Subject: it.Claims.Subject,
				AgentID: it.Claims.ClientID, Resource: resourceURI, Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK,
				Reason: "grant " + it.GrantType + ", scope " + it.Claims.Scope, TokenJTI: it.Claims.ID})
			return err
		}
	}
	h.srv, err = authserver.New(ctx, authserver.Config{
		OnIssue:     onIssue,
		Issuer:      h.issuer,
		Store:       asstore.New(st),
		TrustDomain: trustDomain,
		SVIDs:       h.ca,
		Agents:      []authserver.AgentClient{{ID: agentIdentity, Scopes: []string{"tools:call"}}},
		Clients: []authserver.StaticClient{{ID: clientID, AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: jwks,
			GrantTypes: []string{oauth.GrantClientCredentials}, Scopes: []string{"tools:call"}}},
		Resources: []authserver.Resource{{URI: resourceURI, Scopes: []string{"tools:call"}}},
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	h.http = &http.Server{Handler: h.srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.http.Serve(h.ln) }()
	h.client = &http.Client{Transport: &http.Transport{MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048}, Timeout: 30 * time.Second}
	return h, nil
}

// Close stops the server and closes the database.
func (h *Harness) Close() {
	if h.http != nil {
		_ = h.http.Close()
	} else if h.ln != nil {
		_ = h.ln.Close()
	}
	if h.audit != nil {
		_ = h.audit.Close(context.Background())
	}
	if h.store != nil {
		_ = h.store.Close()
	}
}

// Result is what a run measured.
type Result struct {
	Requests   int64
	Errors     int64
	FirstError string
	Elapsed    time.Duration
	P50, P99   time.Duration
}

// Rate is successful requests per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

// Bodies prepares n request bodies for flow, each with fresh, single-use
// assertions.
func (h *Harness) Bodies(ctx context.Context, flow string, n int) ([]string, error) {
	out := make([]string, n)
	var subject string
	if flow == FlowTokenExchange {
		var err error
		if subject, err = h.userToken(ctx); err != nil {
			return nil, err
		}
	}
	for i := range out {
		switch flow {
		case FlowClientCredentials:
			a, err := h.clientAssertion(ctx)
			if err != nil {
				return nil, err
			}
			out[i] = url.Values{
				"grant_type":            {oauth.GrantClientCredentials},
				"client_assertion_type": {oauth.AssertionJWTBearer},
				"client_assertion":      {a},
				"resource":              {resourceURI},
				"scope":                 {"tools:call"},
			}.Encode()
		case FlowTokenExchange:
			auth, _, err := h.agentSVID(ctx)
			if err != nil {
				return nil, err
			}
			actor, _, err := h.agentSVID(ctx)
			if err != nil {
				return nil, err
			}
			out[i] = url.Values{
				"grant_type":            {oauth.GrantTokenExchange},
				"client_assertion_type": {oauth.AssertionJWTSPIFFE},
				"client_assertion":      {auth},
				"subject_token":         {subject},
				"subject_token_type":    {oauth.TokenTypeAccessToken},
				"actor_token":           {actor},
				"actor_token_type":      {oauth.TokenTypeJWT},
				"resource":              {resourceURI},
			}.Encode()
		default:
			return nil, fmt.Errorf("unknown flow %q", flow)
		}
	}
	return out, nil
}

func (h *Harness) clientAssertion(ctx context.Context) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := time.Now()
	return jose.Sign(ctx, h.key, "load-1", jose.TypJWT, map[string]any{
		"iss": clientID, "sub": clientID, "aud": h.issuer, "iat": now.Unix(), "exp": now.Add(30 * time.Minute).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti),
	})
}

// userToken gets a token for the agent on the agent's own authority and
// uses it as the subject token: a token whose audience is the agent.
func (h *Harness) userToken(ctx context.Context) (string, error) {
	auth, _, err := h.agentSVID(ctx)
	if err != nil {
		return "", err
	}
	body := url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {auth},
		"resource":              {agentIdentity.String()},
	}.Encode()
	tok, err := h.post(ctx, body)
	if err != nil {
		return "", fmt.Errorf("subject token: %w", err)
	}
	return tok, nil
}

// post sends one token request and returns the access token.
func (h *Harness) post(ctx context.Context, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.issuer+authserver.PathToken, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	var tr oauth.TokenResponse
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("bad token response: %s", data)
	}
	return tr.AccessToken, nil
}

// Run sends prepared requests from clients goroutines for d.
func (h *Harness) Run(ctx context.Context, flow string, clients int, d time.Duration) (Result, error) {
	// Measure a short warm-up rate to size the prepared bodies.
	warm, err := h.Bodies(ctx, flow, 50)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	for _, b := range warm {
		if _, err := h.post(ctx, b); err != nil {
			return Result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	perSecond := float64(len(warm)) / time.Since(start).Seconds() * 4 // room for concurrency
	n := int(perSecond*d.Seconds()) + 1000
	bodies, err := h.Bodies(ctx, flow, n)
	if err != nil {
		return Result{}, err
	}
	return h.Drive(ctx, bodies, clients, d), nil
}

// Drive sends bodies (each at most once) from clients goroutines until d
// has passed or the bodies run out.
func (h *Harness) Drive(ctx context.Context, bodies []string, clients int, d time.Duration) Result {
	var next atomic.Int64
	var res Result
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var errs int64
			var first string
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if int(i) >= len(bodies) {
					break
				}
				t0 := time.Now()
				_, err := h.post(ctx, bodies[i])
				mine = append(mine, time.Since(t0))
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			res.Errors += errs
			if res.FirstError == "" {
				res.FirstError = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Requests = int64(len(lat))
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[len(lat)*99/100]
	}
	return res
}

// agentSVID mints a JWT-SVID for the agent addressed to the issuer.
func (h *Harness) agentSVID(ctx context.Context) (string, time.Time, error) {
	id, err := workloadapi.IDFromIdentity(agentIdentity)
	if err != nil {
		return "", time.Time{}, err
	}
	return h.ca.NewJWTSVID(ctx, id, []string{h.issuer})
}

// openAudit opens an audit log over st with a fresh checkpoint key.
func openAudit(ctx context.Context, st *sqlitestore.Store) (*audit.Log, error) {
	skey, _, err := audit.GenerateKey(rand.Reader, trustDomain)
	if err != nil {
		return nil, err
	}
	signer, verifier, err := audit.ParseKey(skey)
	if err != nil {
		return nil, err
	}
	return audit.Open(ctx, audit.Config{Log: st, Signer: signer, Verifier: verifier})
}
