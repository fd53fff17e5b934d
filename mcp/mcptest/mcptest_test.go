package mcptest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/mcp/mcptest"
)

func TestInitialize(t *testing.T) {
	var got http.Header
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		b := new(strings.Builder)
		_, _ = io.Copy(b, r.Body)
		body = b.String()
		w.Header().Add("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Add("WWW-Authenticate", `DPoP algs="ES256"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	status, challenges, err := mcptest.Initialize(context.Background(), srv.URL+"/mcp", "DPoP", "tok", key)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized || challenges != `Bearer error="invalid_token", DPoP algs="ES256"` {
		t.Errorf("Initialize = %d %q", status, challenges)
	}
	if got.Get("Authorization") != "DPoP tok" || strings.Count(got.Get("DPoP"), ".") != 2 || !strings.Contains(body, `"method":"initialize"`) {
		t.Errorf("request: Authorization %q, DPoP %q, body %s", got.Get("Authorization"), got.Get("DPoP"), body)
	}
	if _, _, err := mcptest.Initialize(context.Background(), srv.URL+"/mcp", "Bearer", "tok", nil); err != nil || got.Get("DPoP") != "" {
		t.Errorf("without a key: err %v, DPoP %q", err, got.Get("DPoP"))
	}
}
