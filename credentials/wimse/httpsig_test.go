package wimse_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
)

const testBody = `{"hello": "world"}`

func TestContentDigest(t *testing.T) {
	// RFC 9530 §2 example.
	if got, want := wimse.ContentDigest([]byte(testBody)), "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"; got != want {
		t.Fatalf("ContentDigest = %s, want %s", got, want)
	}
}

// clientRequest returns a client request to testTarget?q=1 carrying an
// access token, a Txn-Token and, for POST, a JSON body.
func clientRequest(tb testing.TB, method string) *http.Request {
	tb.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(testBody)
	}
	req, err := http.NewRequest(method, testTarget+"?q=1", body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAccessToken)
	req.Header.Set(wimse.HeaderTxnToken, testTxnToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// onWire returns req as a server reads it: written in HTTP/1.1 and parsed
// back.
func onWire(tb testing.TB, req *http.Request) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func fromWire(tb testing.TB, raw []byte) *http.Request {
	tb.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// signedWire signs a client request with SignRequest at t0 and returns its
// wire form.
func signedWire(tb testing.TB, method string, opts wimse.SignOptions) []byte {
	tb.Helper()
	req := clientRequest(tb, method)
	if opts.Now == nil {
		opts.Now = fixed(t0)
	}
	if err := wimse.SignRequest(context.Background(), req, mintWIT(tb, nil), workloadKey, opts); err != nil {
		tb.Fatalf("SignRequest: %v", err)
	}
	return onWire(tb, req)
}

// verifySig verifies r's WIMSE peer with v.
func verifySig(tb testing.TB, v *wimse.Verifier, r *http.Request) (*wimse.Peer, error) {
	tb.Helper()
	p, err := v.Verify(r)
	if err == nil && p.Mode != wimse.ModeHTTPSig {
		tb.Fatalf("mode %s", p.Mode)
	}
	return p, err
}

func TestSignRequestVerify(t *testing.T) {
	testKeys(t)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			raw := signedWire(t, method, wimse.SignOptions{})
			r := fromWire(t, raw)
			si := r.Header.Get(wimse.HeaderSignatureInput)
			t.Logf("Signature-Input: %s", si)
			for _, want := range []string{`wimse=("@method" "@request-target" "workload-identity-token"`, `"authorization"`, `"txn-token"`, `;tag="wimse-workload-to-workload"`, `;wimse-aud="https://api.example.org/tools/call"`} {
				if !strings.Contains(si, want) {
					t.Errorf("Signature-Input lacks %s", want)
				}
			}
			if strings.Contains(si, "keyid") || strings.Contains(si, ";alg") {
				t.Errorf("Signature-Input carries keyid or alg")
			}
			if method == http.MethodPost && !strings.Contains(si, `"content-digest"`) {
				t.Errorf("content-digest not covered")
			}
			if method == http.MethodGet && r.Header.Get(wimse.HeaderContentDigest) != "" {
				t.Errorf("Content-Digest on a request without body")
			}
			p, err := verifySig(t, newVerifier(t, nil), r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Identity().String() != testSubject || p.Audience != testTarget || p.ProofID == "" || !p.ProofExpiresAt.Equal(t0.Add(time.Minute)) {
				t.Errorf("peer %+v", p)
			}
			body, _ := io.ReadAll(r.Body)
			if method == http.MethodPost && string(body) != testBody {
				t.Errorf("handler sees body %q", body)
			}
		})
	}
}

// TestSignRequestBase rebuilds the signature base of a signed request
// independently (RFC 9421 §2.5) and checks the signature over it, so the
// wire format does not depend on the package agreeing with itself.
func TestSignRequestBase(t *testing.T) {
	testKeys(t)
	r := fromWire(t, signedWire(t, http.MethodPost, wimse.SignOptions{}))
	si := r.Header.Get(wimse.HeaderSignatureInput)
	inner, ok := strings.CutPrefix(si, "wimse=")
	if !ok {
		t.Fatalf("label: %s", si)
	}
	list := inner[1:strings.IndexByte(inner, ')')]
	var base strings.Builder
	for _, c := range strings.Split(list, " ") {
		name := strings.Trim(c, `"`)
		var v string
		switch name {
		case "@method":
			v = r.Method
		case "@request-target":
			v = r.RequestURI
		default:
			v = r.Header.Get(name)
		}
		fmt.Fprintf(&base, "%q: %s\n", name, v)
	}
	base.WriteString(`"@signature-params": ` + inner)
	want := fmt.Sprintf(`"@method": POST
"@request-target": /tools/call?q=1
"workload-identity-token": %s
"content-type": application/json
"content-digest": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:
"authorization": Bearer %s
"txn-token": %s
"@signature-params": `, r.Header.Get(wimse.HeaderWIT), testAccessToken, testTxnToken)
	if !strings.HasPrefix(base.String(), want) {
		t.Fatalf("signature base:\n%s\nwant prefix:\n%s", base.String(), want)
	}
	sigField := r.Header.Get(wimse.HeaderSignature)
	b64, ok := strings.CutPrefix(sigField, "wimse=:")
	if !ok || !strings.HasSuffix(b64, ":") {
		t.Fatalf("Signature: %s", sigField)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(b64, ":"))
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature bytes: %v (%d)", err, len(sig))
	}
	sum := sha256.Sum256([]byte(base.String()))
	if !ecdsa.Verify(&workloadKey.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("signature does not verify over the independently built base")
	}
}

func TestVerifySignatureRefused(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name    string
		opts    wimse.SignOptions
		method  string
		mutate  func(*http.Request)
		mod     func(*wimse.Config)
		reasons []error
	}{
		{
			name:    "body changed",
			method:  http.MethodPost,
			mutate:  func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"hello": "mallory"}`)) },
			reasons: []error{wimse.ErrContentDigest},
		},
		{
			name:    "body added to a request signed without one",
			method:  http.MethodGet,
			mutate:  func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(testBody)) },
			reasons: []error{wimse.ErrContentDigest},
		},
		{
			name:   "body and digest both changed",
			method: http.MethodPost,
			mutate: func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader("x"))
				r.Header.Set(wimse.HeaderContentDigest, wimse.ContentDigest([]byte("x")))
			},
			reasons: []error{wimse.ErrSignature},
		},
		{
			name:    "Content-Digest removed",
			method:  http.MethodPost,
			mutate:  func(r *http.Request) { r.Header.Del(wimse.HeaderContentDigest) },
			reasons: nil,
		},
		{
			name:    "other method",
			method:  http.MethodPost,
			mutate:  func(r *http.Request) { r.Method = http.MethodPut },
			reasons: []error{wimse.ErrSignature},
		},
		{
			name:    "other query",
			method:  http.MethodGet,
			mutate:  func(r *http.Request) { r.RequestURI = "/tools/call?q=2" },
			reasons: []error{wimse.ErrSignature},
		},
		{
			name:    "other path",
			method:  http.MethodGet,
			mutate:  func(r *http.Request) { r.RequestURI = "/tools/admin?q=1"; r.URL.Path = "/tools/admin" },
			reasons: []error{wimse.ErrWrongAudience},
		},
		{
			name:    "other access token",
			method:  http.MethodGet,
			mutate:  func(r *http.Request) { r.Header.Set("Authorization", "Bearer stolen") },
			reasons: []error{wimse.ErrSignature},
		},
		{
			name:    "other Txn-Token",
			method:  http.MethodGet,
			mutate:  func(r *http.Request) { r.Header.Set(wimse.HeaderTxnToken, "another") },
			reasons: []error{wimse.ErrSignature},
		},
		{
			name:    "signed for another audience",
			method:  http.MethodGet,
			opts:    wimse.SignOptions{Audience: "https://other.example/tools/call"},
			reasons: []error{wimse.ErrWrongAudience},
		},
		{
			name:   "audience taken from X-Forwarded-Host and Host never counts",
			method: http.MethodGet,
			opts:   wimse.SignOptions{Audience: "https://evil.example/tools/call"},
			mutate: func(r *http.Request) {
				r.Host = "evil.example"
				r.Header.Set("X-Forwarded-Host", "evil.example")
				r.Header.Set("X-Forwarded-Proto", "https")
			},
			reasons: []error{wimse.ErrWrongAudience},
		},
		{
			name:    "expired",
			method:  http.MethodGet,
			mod:     func(c *wimse.Config) { c.Clock = fixed(t0.Add(2 * time.Minute)) },
			reasons: []error{wimse.ErrExpired},
		},
		{
			name:    "created in the future",
			method:  http.MethodGet,
			mod:     func(c *wimse.Config) { c.Clock = fixed(t0.Add(-time.Minute)) },
			reasons: []error{wimse.ErrNotYetValid},
		},
		{
			name:    "lifetime beyond the verifier's maximum",
			method:  http.MethodGet,
			opts:    wimse.SignOptions{Lifetime: 5 * time.Minute},
			mod:     func(c *wimse.Config) { c.MaxProofLifetime = time.Minute },
			reasons: []error{wimse.ErrExpired},
		},
		{
			name:    "body larger than the verifier reads",
			method:  http.MethodPost,
			mod:     func(c *wimse.Config) { c.MaxBodySize = 4 },
			reasons: []error{wimse.ErrBodyTooLarge},
		},
		{
			name:   "signature bytes changed",
			method: http.MethodGet,
			mutate: func(r *http.Request) {
				r.Header.Set(wimse.HeaderSignature, "wimse=:"+base64.StdEncoding.EncodeToString(make([]byte, 64))+":")
			},
			reasons: []error{wimse.ErrSignature},
		},
		{
			name:    "WIT of another workload",
			method:  http.MethodGet,
			mutate:  func(r *http.Request) { r.Header.Set(wimse.HeaderWIT, otherWorkloadWIT(t)) },
			reasons: []error{wimse.ErrSignature},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fromWire(t, signedWire(t, tt.method, tt.opts))
			if tt.mutate != nil {
				tt.mutate(r)
			}
			p, err := verifySig(t, newVerifier(t, tt.mod), r)
			if err == nil {
				t.Fatalf("Verify accepted the request: %+v", p)
			}
			t.Logf("err: %v", err)
			if !errors.Is(err, wimse.ErrInvalidProof) {
				t.Errorf("err = %v, want ErrInvalidProof", err)
			}
			for _, reason := range tt.reasons {
				if !errors.Is(err, reason) {
					t.Errorf("err = %v, want it to wrap %v", err, reason)
				}
			}
		})
	}
}

// otherWorkloadWIT is a valid WIT for another workload key.
func otherWorkloadWIT(tb testing.TB) string {
	return mintWIT(tb, func(c map[string]any) {
		c["sub"] = "spiffe://example.org/agent/other"
		c["cnf"] = cnf(tb, otherKey.Public(), jose.ES256)
	})
}

func TestVerifySignatureReplay(t *testing.T) {
	testKeys(t)
	raw := signedWire(t, http.MethodPost, wimse.SignOptions{})
	v := newVerifier(t, nil)
	if _, err := verifySig(t, v, fromWire(t, raw)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := verifySig(t, v, fromWire(t, raw))
	if !errors.Is(err, wimse.ErrReplayed) || !errors.Is(err, wimse.ErrInvalidProof) {
		t.Fatalf("replay: err = %v, want ErrReplayed", err)
	}
}

// handSign signs a server-side request with an arbitrary label,
// component list and parameter string, building the base by hand, for the
// shapes SignRequest never produces.
func handSign(tb testing.TB, r *http.Request, label string, components []string, params string) {
	tb.Helper()
	var base strings.Builder
	quoted := make([]string, len(components))
	for i, c := range components {
		quoted[i] = `"` + c + `"`
		var v string
		switch c {
		case "@method":
			v = r.Method
		case "@request-target":
			v = r.RequestURI
		case "@path":
			v = r.URL.Path
		case "@query":
			v = "?" + r.URL.RawQuery
		default:
			v = strings.Join(r.Header.Values(c), ", ")
		}
		fmt.Fprintf(&base, "\"%s\": %s\n", c, v)
	}
	inner := "(" + strings.Join(quoted, " ") + ")" + params
	base.WriteString(`"@signature-params": ` + inner)
	sum := sha256.Sum256([]byte(base.String()))
	rr, s, err := ecdsa.Sign(rand.Reader, workloadKey, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	r.Header.Add(wimse.HeaderSignatureInput, label+"="+inner)
	r.Header.Add(wimse.HeaderSignature, label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

// profileParams are valid request signature parameters at t0, with extra
// appended.
func profileParams(nonce, extra string) string {
	return fmt.Sprintf(`;created=%d;expires=%d;nonce=%q;tag="wimse-workload-to-workload";wimse-aud="%s"%s`,
		t0.Unix(), t0.Add(time.Minute).Unix(), nonce, testTarget, extra)
}

func TestVerifySignatureProfile(t *testing.T) {
	testKeys(t)
	std := []string{"@method", "@request-target", "workload-identity-token"}
	tests := []struct {
		name       string
		request    func(*http.Request)
		sign       func(tb testing.TB, r *http.Request)
		ok         bool
		reasons    []error
		errContain string
	}{
		{
			name: "minimal profile signature",
			sign: func(tb testing.TB, r *http.Request) { handSign(tb, r, "wimse", std, profileParams("n1", "")) },
			ok:   true,
		},
		{
			name: "any label: found by tag",
			sign: func(tb testing.TB, r *http.Request) { handSign(tb, r, "sig7", std, profileParams("n1", "")) },
			ok:   true,
		},
		{
			name: "@path and @query instead of @request-target",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", []string{"@method", "@path", "@query", "workload-identity-token"}, profileParams("n1", ""))
			},
			ok: true,
		},
		{
			name: "alongside another party's signature",
			sign: func(tb testing.TB, r *http.Request) {
				r.Header.Add(wimse.HeaderSignatureInput, `proxy=("@method");created=1;keyid="p"`)
				r.Header.Add(wimse.HeaderSignature, `proxy=:AAAA:`)
				handSign(tb, r, "wimse", std, profileParams("n1", ""))
			},
			ok: true,
		},
		{
			name: "keyid parameter",
			sign: func(tb testing.TB, r *http.Request) { handSign(tb, r, "wimse", std, profileParams("n1", `;keyid="k"`)) },
		},
		{
			name: "alg parameter",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, profileParams("n1", `;alg="ecdsa-p256-sha256"`))
			},
		},
		{
			name: "no tag",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, fmt.Sprintf(`;created=%d;expires=%d;nonce="n";wimse-aud="%s"`, t0.Unix(), t0.Add(time.Minute).Unix(), testTarget))
			},
			errContain: "no signature with tag",
		},
		{
			name: "two signatures with the WIMSE tag",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "a", std, profileParams("n1", ""))
				handSign(tb, r, "b", std, profileParams("n2", ""))
			},
			errContain: "more than one",
		},
		{
			name: "no nonce",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, fmt.Sprintf(`;created=%d;expires=%d;tag="wimse-workload-to-workload";wimse-aud="%s"`, t0.Unix(), t0.Add(time.Minute).Unix(), testTarget))
			},
			errContain: "nonce",
		},
		{
			name: "no wimse-aud",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, fmt.Sprintf(`;created=%d;expires=%d;nonce="n";tag="wimse-workload-to-workload"`, t0.Unix(), t0.Add(time.Minute).Unix()))
			},
			errContain: "wimse-aud",
		},
		{
			name: "no expires",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, fmt.Sprintf(`;created=%d;nonce="n";tag="wimse-workload-to-workload";wimse-aud="%s"`, t0.Unix(), testTarget))
			},
			errContain: "expires",
		},
		{
			name: "created not an integer",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, fmt.Sprintf(`;created="%d";expires=%d;nonce="n";tag="wimse-workload-to-workload";wimse-aud="%s"`, t0.Unix(), t0.Add(time.Minute).Unix(), testTarget))
			},
			errContain: "created",
		},
		{
			name: "@method not covered",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", []string{"@request-target", "workload-identity-token"}, profileParams("n1", ""))
			},
			errContain: "@method",
		},
		{
			name: "target not covered",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", []string{"@method", "@path", "workload-identity-token"}, profileParams("n1", ""))
			},
			errContain: "@request-target",
		},
		{
			name: "WIT not covered",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", []string{"@method", "@request-target"}, profileParams("n1", ""))
			},
			errContain: "workload-identity-token",
		},
		{
			name:       "Authorization present but not covered",
			request:    func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testAccessToken) },
			sign:       func(tb testing.TB, r *http.Request) { handSign(tb, r, "wimse", std, profileParams("n1", "")) },
			errContain: "authorization",
		},
		{
			name:       "Txn-Token present but not covered",
			request:    func(r *http.Request) { r.Header.Set(wimse.HeaderTxnToken, testTxnToken) },
			sign:       func(tb testing.TB, r *http.Request) { handSign(tb, r, "wimse", std, profileParams("n1", "")) },
			errContain: "txn-token",
		},
		{
			name: "body with Content-Digest not covered",
			request: func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader(testBody))
				r.Header.Set(wimse.HeaderContentDigest, wimse.ContentDigest([]byte(testBody)))
			},
			sign:       func(tb testing.TB, r *http.Request) { handSign(tb, r, "wimse", std, profileParams("n1", "")) },
			errContain: "content-digest",
		},
		{
			name: "component parameters",
			sign: func(tb testing.TB, r *http.Request) {
				r.Header.Add(wimse.HeaderSignatureInput, `wimse=("@method" "@request-target" "workload-identity-token";sf)`+profileParams("n1", ""))
				r.Header.Add(wimse.HeaderSignature, `wimse=:AAAA:`)
			},
			errContain: "component parameters",
		},
		{
			name: "component covered twice",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", append(std, "@method"), profileParams("n1", ""))
			},
			errContain: "twice",
		},
		{
			name: "unsupported derived component",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", append(std, "@authority"), profileParams("n1", ""))
			},
			errContain: "not supported",
		},
		{
			name: "covered field missing from the message",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", append(std, "x-absent"), profileParams("n1", ""))
			},
			errContain: "not in the message",
		},
		{
			name: "signed response requested",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, profileParams("n1", ";wimse-sign-response"))
			},
			reasons: []error{wimse.ErrUnsupported},
		},
		{
			name: "Signature missing for the label",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, profileParams("n1", ""))
				r.Header.Set(wimse.HeaderSignature, `other=:AAAA:`)
			},
			errContain: "no Signature for label",
		},
		{
			name: "Signature not a byte sequence",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, profileParams("n1", ""))
				r.Header.Set(wimse.HeaderSignature, `wimse="AAAA"`)
			},
			errContain: "byte sequence",
		},
		{
			name: "repeated label",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, profileParams("n1", ""))
				r.Header.Add(wimse.HeaderSignatureInput, `wimse=("@method")`)
			},
			errContain: "repeated",
		},
		{
			name: "repeated parameter",
			sign: func(tb testing.TB, r *http.Request) {
				handSign(tb, r, "wimse", std, profileParams("n1", fmt.Sprintf(";created=%d", t0.Unix())))
			},
			errContain: "repeated",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/tools/call?q=1", nil)
			r.Header.Set(wimse.HeaderWIT, mintWIT(t, nil))
			if tt.request != nil {
				tt.request(r)
			}
			tt.sign(t, r)
			p, err := verifySig(t, newVerifier(t, nil), r)
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.Signature.Nonce != "n1" {
					t.Errorf("nonce %q", p.Signature.Nonce)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the request: %+v", p)
			}
			t.Logf("err: %v", err)
			if !errors.Is(err, wimse.ErrInvalidProof) {
				t.Errorf("err = %v, want ErrInvalidProof", err)
			}
			for _, reason := range tt.reasons {
				if !errors.Is(err, reason) {
					t.Errorf("err = %v, want it to wrap %v", err, reason)
				}
			}
			if tt.errContain != "" && !strings.Contains(err.Error(), tt.errContain) {
				t.Errorf("err = %v, want it to mention %q", err, tt.errContain)
			}
		})
	}
}

func TestVerifyMalformedSignatureInput(t *testing.T) {
	testKeys(t)
	inputs := []string{
		``,
		`wimse`,
		`wimse=`,
		`wimse=(`,
		`wimse=("@method"`,
		`wimse=("@method" "@request-target";tag="wimse-workload-to-workload"`,
		`wimse=("@method");tag=wimse-workload-to-workload`,
		`wimse=("@method");tag="unterminated`,
		`wimse=("@method");tag="bad\escape"`,
		`wimse=("@method");created=1234567890123456;tag="wimse-workload-to-workload"`,
		`Wimse=("@method");tag="wimse-workload-to-workload"`,
		`wimse=("@method"),`,
		`wimse=("@method");;tag="wimse-workload-to-workload"`,
		`wimse=("@method")x;tag="wimse-workload-to-workload"`,
		`wimse=("@method" @method);tag="wimse-workload-to-workload"`,
		`wimse=:AAAA:;tag="wimse-workload-to-workload"`,
		`wimse=("@method");tag="wimse-workload-to-workload";created=?2`,
		"wimse=(\"@method\");tag=\"wimse-workload-to-workload\";nonce=\"\x01\"",
		`wimse=("@method");tag="wimse-workload-to-workload";nonce="é"`,
	}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/tools/call", nil)
			r.Header.Set(wimse.HeaderWIT, mintWIT(t, nil))
			r.Header.Set(wimse.HeaderSignatureInput, in)
			r.Header.Set(wimse.HeaderSignature, `wimse=:AAAA:`)
			_, err := verifySig(t, newVerifier(t, nil), r)
			if !errors.Is(err, wimse.ErrInvalidProof) {
				t.Fatalf("err = %v, want ErrInvalidProof", err)
			}
		})
	}
}

func TestSignRequestEd25519(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, func(c map[string]any) { c["cnf"] = cnf(t, edKey.Public(), jose.EdDSA) })
	req := clientRequest(t, http.MethodPost)
	if err := wimse.SignRequest(context.Background(), req, wit, edKey, wimse.SignOptions{Now: fixed(t0)}); err != nil {
		t.Fatalf("SignRequest: %v", err)
	}
	if _, err := verifySig(t, newVerifier(t, nil), fromWire(t, onWire(t, req))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestSignRequestConfig(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, nil)
	tests := []struct {
		name string
		key  *ecdsa.PrivateKey
		opts wimse.SignOptions
		body string
		want error
	}{
		{"key other than cnf", otherKey, wimse.SignOptions{}, "", wimse.ErrConfig},
		{"lifetime over the cap", workloadKey, wimse.SignOptions{Lifetime: time.Hour}, "", wimse.ErrConfig},
		{"audience not a string item", workloadKey, wimse.SignOptions{Audience: "https://a.example/é"}, "", wimse.ErrConfig},
		{"body too large", workloadKey, wimse.SignOptions{MaxBodySize: 3}, "four", wimse.ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, testTarget, strings.NewReader(tt.body))
			if err := wimse.SignRequest(context.Background(), req, wit, tt.key, tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
