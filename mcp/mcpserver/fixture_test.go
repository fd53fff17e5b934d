package mcpserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

const (
	testIssuer = "https://as.example"
	serverName = "notes"
)

// seen is what a tool handler observed, for the tests to inspect.
type seen struct {
	mu      sync.Mutex
	subject string
	args    string
	leaks   []string // paths in the handler's context where a secret was found
	// deniedCalls are the tools/call refusals OnDenied was told of.
	deniedCalls []string
}

// fixture is an MCP server behind a real resource.Verifier, served by an
// httptest server, and a signing key for access tokens it accepts.
type fixture struct {
	t        testing.TB
	key      *ecdsa.PrivateKey
	srv      *httptest.Server
	resource string
	mdURL    string
	v        *resource.Verifier
	s        *Server
	seen     *seen
	secrets  []string // strings no handler may find
	denied   []string // tools the Authorizer refuses
}

type fixtureOpts struct {
	maxBody int64
	// tools replaces the default tool set when set.
	tools func(f *fixture) []Tool
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{t: t, seen: &seen{}, denied: []string{"notes.purge"}}
	var err error
	f.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = http.NotFoundHandler()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	f.resource = f.srv.URL + "/mcp/" + serverName
	f.mdURL = f.srv.URL + "/.well-known/oauth-protected-resource/mcp/" + serverName
	f.v, err = resource.New(resource.Config{
		Resource: f.resource, MetadataURL: f.mdURL, Issuer: testIssuer,
		Keys:            jose.StaticKeys(map[string]crypto.PublicKey{"k1": f.key.Public()}),
		ScopesSupported: []string{"notes:read", "notes:write"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tools := f.defaultTools()
	if o.tools != nil {
		tools = o.tools(f)
	}
	f.s, err = New(Config{
		Name: serverName, Title: "Notes", Version: "1.0.0", Tools: tools, Verifier: f.v,
		Authorize: func(_ context.Context, c *resource.Caller, server, tool string) error {
			if server != serverName || c == nil || c.Subject == "" {
				return errors.New("unexpected policy input")
			}
			for _, d := range f.denied {
				if d == tool {
					return fmt.Errorf("%w: %s", ErrDenied, tool)
				}
			}
			return nil
		},
		OnDenied: func(_ context.Context, c *resource.Caller, tool string, err error) {
			f.seen.mu.Lock()
			f.seen.deniedCalls = append(f.seen.deniedCalls, c.Subject+" "+tool+": "+err.Error())
			f.seen.mu.Unlock()
		},
		MaxBodyBytes: o.maxBody,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp/"+serverName, f.s.Handler())
	h = mux
	return f
}

// defaultTools: notes.read (notes:read), notes.write (notes:write),
// notes.purge (notes:read, refused by policy), notes.fail (handler error).
func (f *fixture) defaultTools() []Tool {
	return []Tool{
		{
			Name: "notes.read", Description: "Reads a note.", Scope: "notes:read", ReadOnly: true,
			InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`),
			Handler: func(ctx context.Context, c *resource.Caller, args json.RawMessage) (Result, error) {
				leaks := findSecrets(ctx, f.secrets)
				f.seen.mu.Lock()
				f.seen.subject, f.seen.args, f.seen.leaks = c.Subject, string(args), leaks
				f.seen.mu.Unlock()
				return Result{Text: "note for " + c.Subject, Structured: map[string]any{"subject": c.Subject, "args": args}}, nil
			},
		},
		{
			Name: "notes.write", Description: "Writes a note.", Scope: "notes:write",
			Handler: func(context.Context, *resource.Caller, json.RawMessage) (Result, error) {
				return Result{Text: "written"}, nil
			},
		},
		{
			Name: "notes.purge", Description: "Deletes every note.", Scope: "notes:read",
			Handler: func(context.Context, *resource.Caller, json.RawMessage) (Result, error) {
				return Result{Text: "purged"}, nil
			},
		},
		{
			Name: "notes.fail", Description: "Always fails.", Scope: "notes:read",
			Handler: func(context.Context, *resource.Caller, json.RawMessage) (Result, error) {
				return Result{}, errors.New("database password is hunter2")
			},
		},
	}
}

// token mints an access token for the fixture's resource with scope.
func (f *fixture) token(scope string) string {
	f.t.Helper()
	now := time.Now()
	tok, err := jose.Sign(context.Background(), f.key, "k1", jose.TypAccessToken, oauth.AccessTokenClaims{
		Issuer: testIssuer, Subject: "alice", Audience: oauth.Audience{f.resource}, ClientID: "cli",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(5 * time.Minute).Unix(), ID: "jti-" + scope, Scope: scope,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// post sends one JSON-RPC body with the given bearer token ("" for none).
func (f *fixture) post(tok, body string, hdr map[string]string) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.resource, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// rpcResponse is a decoded JSON-RPC response, taken from a JSON body or
// from the first data line of an SSE body.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func readRPC(t testing.TB, resp *http.Response) rpcResponse {
	t.Helper()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.Lines(string(b)) {
			if d, ok := strings.CutPrefix(line, "data:"); ok {
				b = []byte(strings.TrimSpace(d))
				break
			}
		}
	}
	var r rpcResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %d %q is not JSON-RPC: %v", resp.StatusCode, b, err)
	}
	return r
}

// findSecrets walks everything reachable from ctx (context chain, values,
// requests, headers, bodies already buffered) and returns the paths where
// one of secrets occurs. It does not descend into the *http.Server that
// net/http puts in every request context: its connection buffers hold the
// raw bytes read off the wire, which is net/http's own state and not
// something this package hands to a handler.
func findSecrets(ctx context.Context, secrets []string) []string {
	w := &walker{secrets: secrets, visited: map[uintptr]bool{}}
	w.walk(reflect.ValueOf(ctx), "ctx", 0)
	return w.found
}

type walker struct {
	secrets []string
	visited map[uintptr]bool
	found   []string
}

var skipTypes = map[reflect.Type]bool{reflect.TypeFor[*http.Server](): true}

func (w *walker) check(s, path string) {
	for _, sec := range w.secrets {
		if sec != "" && strings.Contains(s, sec) {
			w.found = append(w.found, path)
		}
	}
}

func (w *walker) walk(v reflect.Value, path string, depth int) {
	if !v.IsValid() || depth > 40 {
		return
	}
	if skipTypes[v.Type()] {
		return
	}
	switch v.Kind() {
	case reflect.String:
		w.check(v.String(), path)
	case reflect.Pointer, reflect.UnsafePointer:
		if v.IsNil() {
			return
		}
		p := v.Pointer()
		if w.visited[p] {
			return
		}
		w.visited[p] = true
		if v.Kind() == reflect.Pointer {
			w.walk(v.Elem(), path, depth+1)
		}
	case reflect.Interface:
		w.walk(v.Elem(), path, depth+1)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			w.walk(v.Field(i), path+"."+v.Type().Field(i).Name, depth+1)
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice {
			if v.IsNil() {
				return
			}
			if v.Type().Elem().Kind() == reflect.Uint8 {
				w.check(string(v.Bytes()), path)
				return
			}
		}
		for i := 0; i < v.Len(); i++ {
			w.walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		if w.visited[v.Pointer()] {
			return
		}
		w.visited[v.Pointer()] = true
		it := v.MapRange()
		for it.Next() {
			w.walk(it.Key(), path+"{key}", depth+1)
			w.walk(it.Value(), fmt.Sprintf("%s[%v]", path, it.Key()), depth+1)
		}
	}
}
