package mcpclient

import (
	"net/url"
	"slices"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

func TestSameEndpoint(t *testing.T) {
	c := &Client{}
	var err error
	if c.endpoint, err = url.Parse("https://mcp.example/mcp"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want bool
	}{
		{"https://mcp.example/mcp", true},
		{"HTTPS://MCP.example/mcp", true},
		{"https://mcp.example/mcp?x=1", true},
		{"http://mcp.example/mcp", false},
		{"https://mcp.example:8443/mcp", false},
		{"https://mcp.example/mcp/", false},
		{"https://mcp.example/other", false},
		{"https://evil.example/mcp", false},
		{"https://mcp.example.evil/mcp", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.sameEndpoint(u); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.url, got, tt.want)
		}
	}
}

func TestParseChallengeInfo(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    challengeInfo
		wantErr bool
	}{
		{"bearer", []string{`Bearer resource_metadata="https://r.example/prm", scope="a b"`},
			challengeInfo{ResourceMetadata: "https://r.example/prm", Scope: []string{"a", "b"}}, false},
		{"step-up", []string{`Bearer error="insufficient_scope", error_description="need c", scope="c"`},
			challengeInfo{Scope: []string{"c"}, Code: oauth.CodeInsufficientScope, Description: "need c"}, false},
		{"dpop and bearer", []string{`Bearer scope="a"`, `DPoP algs="ES256", error="use_dpop_nonce"`},
			challengeInfo{Scope: []string{"a"}, Code: oauth.CodeUseDPoPNonce}, false},
		{"other schemes ignored", []string{`Basic realm="x", Bearer scope="a"`},
			challengeInfo{Scope: []string{"a"}}, false},
		{"basic only", []string{`Basic realm="x"`}, challengeInfo{}, false},
		{"none", nil, challengeInfo{}, false},
		{"unterminated quote", []string{`Bearer scope="a`}, challengeInfo{}, true},
		{"malformed scope", []string{`Bearer scope="a  b"`}, challengeInfo{}, true},
		{"scope with quote", []string{`Bearer scope="a\"b"`}, challengeInfo{}, true},
		{"duplicate parameter", []string{`Bearer scope="a", scope="b"`}, challengeInfo{}, true},
		{"garbage", []string{`=`}, challengeInfo{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChallengeInfo(tt.headers)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if got.ResourceMetadata != tt.want.ResourceMetadata || !slices.Equal(got.Scope, tt.want.Scope) ||
				got.Code != tt.want.Code || got.Description != tt.want.Description {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	long := make([]byte, 500)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name string
		in   challengeInfo
		want string
	}{
		{"empty", challengeInfo{}, ""},
		{"code", challengeInfo{Code: "invalid_token"}, " (invalid_token)"},
		{"control characters", challengeInfo{Code: "invalid_token", Description: "a\nb\x1b"}, " (invalid_token: ab)"},
		{"long", challengeInfo{Code: "c", Description: string(long)}, " (c: " + string(long[:197]) + "…)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.in); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseChallengeInfo(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://r.example/prm", scope="a b"`,
		`Bearer error="insufficient_scope", scope="c", DPoP algs="ES256"`,
		`Basic realm="x"`, `Bearer scope="a  b"`, `Bearer abc==`, `, ,`, `Bearer scope="\"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		info, err := parseChallengeInfo([]string{h})
		if err != nil {
			return
		}
		for i, s := range info.Scope {
			if !oauth.ValidScopeToken(s) || slices.Contains(info.Scope[:i], s) {
				t.Fatalf("scope %q from %q", info.Scope, h)
			}
		}
		_ = describe(info)
	})
}
