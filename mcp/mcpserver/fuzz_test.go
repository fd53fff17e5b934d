package mcpserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

type mcpCallToolRequest = mcpgo.CallToolRequest

// FuzzParseMessage checks that parseMessage never panics and accepts only
// single JSON objects.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		listBody, initBody, callBody("notes.read"), ``, `{`, `[]`, `[{}]`, `null`, `"x"`, ` {"method":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}`, "\x00", `{"id":{"a":1},"method":"m"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, code, text := parseMessage(body)
		switch code {
		case 0:
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
				t.Fatalf("accepted %q which is not a JSON object", body)
			}
			if text != "" {
				t.Fatalf("text %q without a code", text)
			}
			_ = msg
		case mcpgo.PARSE_ERROR:
			if json.Valid(body) {
				t.Fatalf("valid JSON %q reported as a parse error", body)
			}
		case mcpgo.INVALID_REQUEST:
			if !json.Valid(body) {
				t.Fatalf("invalid JSON %q reported as an invalid request", body)
			}
		default:
			t.Fatalf("code %d for %q", code, body)
		}
	})
}

// FuzzServe posts arbitrary bodies with a valid token: the answer is always
// a well-formed HTTP response from a fixed set of statuses, never a panic.
func FuzzServe(f *testing.F) {
	fx := newFixture(f, fixtureOpts{maxBody: 1 << 12})
	tok := fx.token("notes:read")
	h := fx.s.Handler()
	for _, s := range []string{
		listBody, initBody, callBody("notes.read"), callBody("notes.write"), callBody("notes.purge"), callBody("nope"),
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes.read","arguments":[1]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes.read","Name":"notes.write"}}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"notes.write"}}`,
		`{`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, fx.resource, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", legacyHdr)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusForbidden,
			http.StatusNotFound, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == http.StatusForbidden && rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("403 without a challenge for %q", body)
		}
	})
}

// BenchmarkToolsCall measures one authenticated tools/call end to end
// (token verification, guard, MCP dispatch, handler).
func BenchmarkToolsCall(b *testing.B) {
	fx := newFixture(b, fixtureOpts{})
	tok := fx.token("notes:read")
	h := fx.s.Handler()
	body := []byte(callBody("notes.read"))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, fx.resource, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", legacyHdr)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
