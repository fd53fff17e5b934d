package plugins

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/txntoken"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sdk"
)

// digestInputs are arguments whose digest the plugin SDK and the host must
// agree on: spellings of one value must share a digest, and different
// values must not.
var digestInputs = []string{
	``,
	`{}`,
	` { } `,
	`{"a":1,"b":2}`,
	`{"b":2,"a":1}`,
	"{\n\t\"b\" : 2 ,\r\n \"a\" : 1 }",
	`{"amount":3}`,
	`{"amount":3.0}`,
	`{"amount":3e0}`,
	`{"amount":0.3e1}`,
	`{"amount":30}`,
	`{"amount":1e2}`,
	`{"amount":100}`,
	`{"amount":1E+2}`,
	`{"amount":-0}`,
	`{"amount":0.000001}`,
	`{"amount":1e-7}`,
	`{"amount":123456789012345678901234567890}`,
	`{"amount":9007199254740993}`,
	`{"amount":9007199254740992}`,
	`{"amount":1e21}`,
	`{"amount":1e400}`,
	`{"amount":-12.50}`,
	`{"s":"é"}`,
	`{"s":"\u00e9"}`,
	`{"s":"\u00E9"}`,
	`{"s":"😀"}`,
	`{"s":"\ud83d\ude00"}`,
	`{"s":"<&>"}`,
	`{"s":"\u003c\u0026\u003e"}`,
	`{"s":"\/"}`,
	`{"s":"/"}`,
	`{"s":"\u2028"}`,
	`{"s":"tab\there"}`,
	`{"s":"\u0000"}`,
	`{"é":1,"e":2,"z":3,"A":4}`,
	`{"nested":{"z":[1,2,{"y":null,"x":true}],"a":{}},"list":[3,"3",3.0,false]}`,
	`{"nested":{"a":{},"z":[1.0,2,{"x":true,"y":null}]},"list":[3,"3",3,false]}`,
	`[1,2,3]`,
	`"text"`,
	`null`,
	`{"a":1} `,
	// Refused alike: duplicate members, unpaired surrogates, trailing
	// data, invalid UTF-8, not JSON.
	`{"a":1,"a":2}`,
	`{"s":"\ud83d"}`,
	`{"s":"\ude00x"}`,
	`{"a":1}{}`,
	"{\"s\":\"\xff\"}",
	`{"a":01}`,
	`{"a":1.}`,
	`{"a":.5}`,
	`{"a":+1}`,
	`{a:1}`,
	`{"a":[1,2}`,
	strings.Repeat("[", 129) + strings.Repeat("]", 129),
	strings.Repeat("[", 128) + strings.Repeat("]", 128),
}

// TestArgsDigestMatchesHost: the digest a tool plugin computes of the
// arguments in hand (sdk.ArgsDigest, standard library only) is the one the
// host wrote into the token's tctx (txntoken.ArgsDigest), and both refuse
// the same input.
func TestArgsDigestMatchesHost(t *testing.T) {
	for _, in := range digestInputs {
		compareDigests(t, in)
	}
	same := func(a, b string) bool {
		da, _ := sdk.ArgsDigest(json.RawMessage(a))
		db, _ := sdk.ArgsDigest(json.RawMessage(b))
		return da != "" && da == db
	}
	for _, p := range [][2]string{{`{"a":1,"b":2}`, `{"b":2,"a":1}`}, {`{"amount":3}`, `{"amount":3.0}`}, {`{"amount":1e2}`, `{"amount":100}`},
		{`{"s":"é"}`, `{"s":"\u00e9"}`}, {``, `{}`}, {`{"s":"😀"}`, `{"s":"\ud83d\ude00"}`}} {
		if !same(p[0], p[1]) {
			t.Errorf("%s and %s have different digests", p[0], p[1])
		}
	}
	for _, p := range [][2]string{{`{"amount":3}`, `{"amount":30}`}, {`{"amount":9007199254740993}`, `{"amount":9007199254740992}`},
		{`{"list":[3,"3"]}`, `{"list":[3,3]}`}} {
		if same(p[0], p[1]) {
			t.Errorf("%s and %s share a digest", p[0], p[1])
		}
	}
}

func compareDigests(t *testing.T, in string) {
	t.Helper()
	want, werr := txntoken.ArgsDigest(json.RawMessage(in))
	got, gerr := sdk.ArgsDigest(json.RawMessage(in))
	if (werr != nil) != (gerr != nil) || got != want {
		t.Errorf("digest of %q: sdk %q (%v), host %q (%v)", truncateForLog(in), got, gerr, want, werr)
	}
}

func truncateForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func FuzzArgsDigestMatchesHost(f *testing.F) {
	for _, in := range digestInputs {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) { compareDigests(t, in) })
}

// toolServer serves tools in process, as a plugin would, with the keys of
// tts sent as the host sends them.
func toolServer(t testing.TB, tts *testTTS, ts sdk.ToolSet) pluginpb.ToolProviderServer {
	t.Helper()
	s := sdk.ToolServer(ts)
	if _, err := s.ListTools(context.Background(), &pluginpb.ListProvidedToolsRequest{ProtocolVersion: pluginpb.ProtocolVersion,
		TxnTokenJwks: tts.jwks, TrustDomain: testTD, PluginName: "kit"}); err != nil {
		t.Fatal(err)
	}
	return s
}

var payTools = sdk.ToolSet{Name: "kit", Tools: []sdk.Tool{{
	Name: "pay", TxnFields: []string{"amount", "currency"},
	Handler: func(_ context.Context, c sdk.Caller, args json.RawMessage) (string, error) {
		return "paid for " + c.Subject + " in " + c.Txn.Txn, nil
	},
}}}

// rawJWS signs header and payload as given (any header, duplicate members
// included) with key, ES256.
func rawJWS(t testing.TB, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestVerifyCall: a tool plugin runs a call only on a Transaction Token
// of its trust domain, signed by a key the host sent, unexpired, typed
// txntoken+jwt, with every required claim, and issued for exactly this
// call: this tool, these arguments, these declared fields.
func TestVerifyCall(t *testing.T) {
	tts := newTestTTS(t, "k1")
	other := newTestTTS(t, "k1") // same kid, another key
	s := toolServer(t, tts, payTools)
	const args = `{"amount":12.5,"currency":"EUR","to":"bob"}`
	fields := map[string]any{"amount": 12.5, "currency": "EUR"}
	valid := func(t *testing.T) txntoken.Claims { return tts.claims(t, "kit/pay", args, fields) }
	payload := func(t *testing.T, edit func(map[string]any)) string {
		b, _ := json.Marshal(valid(t))
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		edit(m)
		b, _ = json.Marshal(m)
		return string(b)
	}
	header := `{"alg":"ES256","kid":"k1","typ":"txntoken+jwt"}`
	for _, tc := range []struct {
		name  string
		token func(t *testing.T) string
		args  string
		want  error
	}{
		{"valid", func(t *testing.T) string { return tts.sign(t, valid(t)) }, args, nil},
		{"typ with application/ and upper case", func(t *testing.T) string {
			return rawJWS(t, tts.key, `{"alg":"ES256","kid":"k1","typ":"Application/TxnToken+JWT"}`, payload(t, func(map[string]any) {}))
		}, args, nil},
		{"same arguments spelled otherwise", func(t *testing.T) string { return tts.sign(t, valid(t)) },
			`{ "to":"bob", "currency":"EUR", "amount":12.50 }`, nil},
		{"no token", func(*testing.T) string { return "" }, args, sdk.ErrNoTxnToken},
		{"an access token", func(t *testing.T) string {
			return tts.signAs(t, jose.TypAccessToken, map[string]any{"iss": "https://as.test", "sub": "alice", "aud": testTD,
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "scope": "kit:write", "client_id": "x"})
		}, args, sdk.ErrTxnTokenInvalid},
		{"a JWT-SVID (typ JWT)", func(t *testing.T) string {
			return rawJWS(t, tts.key, `{"alg":"ES256","kid":"k1","typ":"JWT"}`, payload(t, func(map[string]any) {}))
		}, args, sdk.ErrTxnTokenInvalid},
		{"no typ", func(t *testing.T) string {
			return rawJWS(t, tts.key, `{"alg":"ES256","kid":"k1"}`, payload(t, func(map[string]any) {}))
		}, args, sdk.ErrTxnTokenInvalid},
		{"another trust domain", func(t *testing.T) string {
			c := valid(t)
			c.Audience = "other.example"
			return tts.sign(t, c)
		}, args, sdk.ErrTxnTokenInvalid},
		{"aud as an array", func(t *testing.T) string {
			return rawJWS(t, tts.key, header, payload(t, func(m map[string]any) { m["aud"] = []string{testTD} }))
		}, args, sdk.ErrTxnTokenInvalid},
		{"expired", func(t *testing.T) string {
			c := valid(t)
			c.IssuedAt, c.ExpiresAt = time.Now().Add(-3*time.Minute).Unix(), time.Now().Add(-time.Minute).Unix()
			return tts.sign(t, c)
		}, args, sdk.ErrTxnTokenInvalid},
		{"issued in the future", func(t *testing.T) string {
			c := valid(t)
			c.IssuedAt, c.ExpiresAt = time.Now().Add(time.Minute).Unix(), time.Now().Add(2*time.Minute).Unix()
			return tts.sign(t, c)
		}, args, sdk.ErrTxnTokenInvalid},
		{"not yet valid (nbf)", func(t *testing.T) string {
			return rawJWS(t, tts.key, header, payload(t, func(m map[string]any) { m["nbf"] = time.Now().Add(time.Minute).Unix() }))
		}, args, sdk.ErrTxnTokenInvalid},
		{"bad signature", func(t *testing.T) string {
			tok := tts.sign(t, valid(t))
			i := strings.LastIndexByte(tok, '.')
			return tok[:i+1] + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
		}, args, sdk.ErrTxnTokenInvalid},
		{"another key under the same kid", func(t *testing.T) string { return other.sign(t, valid(t)) }, args, sdk.ErrTxnTokenInvalid},
		{"unknown kid", func(t *testing.T) string {
			return rawJWS(t, tts.key, `{"alg":"ES256","kid":"k9","typ":"txntoken+jwt"}`, payload(t, func(map[string]any) {}))
		}, args, sdk.ErrTxnTokenInvalid},
		{"alg none", func(t *testing.T) string {
			p := payload(t, func(map[string]any) {})
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1","typ":"txntoken+jwt"}`)) + "." +
				base64.RawURLEncoding.EncodeToString([]byte(p)) + "."
		}, args, sdk.ErrTxnTokenInvalid},
		{"alg HS256", func(t *testing.T) string {
			return rawJWS(t, tts.key, `{"alg":"HS256","kid":"k1","typ":"txntoken+jwt"}`, payload(t, func(map[string]any) {}))
		}, args, sdk.ErrTxnTokenInvalid},
		{"crit", func(t *testing.T) string {
			return rawJWS(t, tts.key, `{"alg":"ES256","kid":"k1","typ":"txntoken+jwt","crit":["x"],"x":1}`, payload(t, func(map[string]any) {}))
		}, args, sdk.ErrTxnTokenInvalid},
		{"duplicate header member", func(t *testing.T) string {
			return rawJWS(t, tts.key, `{"alg":"ES256","kid":"k1","typ":"JWT","typ":"txntoken+jwt"}`, payload(t, func(map[string]any) {}))
		}, args, sdk.ErrTxnTokenInvalid},
		{"duplicate claim", func(t *testing.T) string {
			p := payload(t, func(map[string]any) {})
			return rawJWS(t, tts.key, header, strings.TrimSuffix(p, "}")+`,"sub":"mallory"}`)
		}, args, sdk.ErrTxnTokenInvalid},
		{"no req_wl", func(t *testing.T) string {
			return rawJWS(t, tts.key, header, payload(t, func(m map[string]any) { delete(m, "req_wl") }))
		}, args, sdk.ErrTxnTokenInvalid},
		{"no txn", func(t *testing.T) string {
			return rawJWS(t, tts.key, header, payload(t, func(m map[string]any) { delete(m, "txn") }))
		}, args, sdk.ErrTxnTokenInvalid},
		{"exp as a string", func(t *testing.T) string {
			return rawJWS(t, tts.key, header, payload(t, func(m map[string]any) { m["exp"] = "tomorrow" }))
		}, args, sdk.ErrTxnTokenInvalid},
		{"not a JWS", func(*testing.T) string { return "not.a-jws" }, args, sdk.ErrTxnTokenInvalid},
		{"another tool", func(t *testing.T) string { return tts.token(t, "kit/refund", args, fields) }, args, sdk.ErrTxnCallMismatch},
		{"the tool of another plugin", func(t *testing.T) string { return tts.token(t, "other/pay", args, fields) }, args, sdk.ErrTxnCallMismatch},
		{"other arguments", func(t *testing.T) string { return tts.sign(t, valid(t)) },
			`{"amount":1250,"currency":"EUR","to":"bob"}`, sdk.ErrTxnCallMismatch},
		{"a declared field differs from tctx", func(t *testing.T) string {
			return tts.token(t, "kit/pay", args, map[string]any{"amount": 1250, "currency": "EUR"})
		}, args, sdk.ErrTxnCallMismatch},
		{"a declared field missing from tctx", func(t *testing.T) string {
			return tts.token(t, "kit/pay", args, map[string]any{"amount": 12.5})
		}, args, sdk.ErrTxnCallMismatch},
		{"a declared field only in tctx", func(t *testing.T) string {
			return tts.token(t, "kit/pay", `{"amount":12.5,"to":"bob"}`, fields)
		}, `{"amount":12.5,"to":"bob"}`, sdk.ErrTxnCallMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.CallTool(context.Background(), &pluginpb.CallProvidedToolRequest{Tool: "pay", ArgumentsJson: tc.args, TxnToken: tc.token(t)})
			if tc.want == nil {
				if err != nil || res.GetIsError() || res.GetContent()[0].GetText() != "paid for alice in txn-1" {
					t.Fatalf("CallTool = %v, %v", res, err)
				}
				return
			}
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), tc.want.Error()) {
				t.Fatalf("CallTool = %v, %v; want PermissionDenied with %q", res, err, tc.want)
			}
			t.Log(status.Convert(err).Message())
		})
	}
}

// TestVerifyCallInHandler: a tool set that leaves the check to its
// handlers gets an empty Caller until VerifyCall, which refuses what the
// SDK would refuse; a Caller the SDK did not build holds no token.
func TestVerifyCallInHandler(t *testing.T) {
	tts := newTestTTS(t, "k1")
	var seen []string
	s := toolServer(t, tts, sdk.ToolSet{Name: "kit", SkipTxnTokenCheck: true, Tools: []sdk.Tool{{
		Name: "echo",
		Handler: func(_ context.Context, c sdk.Caller, args json.RawMessage) (string, error) {
			seen = append(seen, c.Subject)
			claims, err := c.VerifyCall("echo", args)
			if err != nil {
				return "", err
			}
			return c.Subject + " " + claims.Txn + " " + c.Agent, nil
		},
	}}})
	ctx := context.Background()
	res, err := s.CallTool(ctx, &pluginpb.CallProvidedToolRequest{Tool: "echo", ArgumentsJson: `{}`, TxnToken: tts.token(t, "kit/echo", `{}`, nil)})
	if err != nil || res.GetContent()[0].GetText() != "alice txn-1 research" || seen[0] != "" {
		t.Fatalf("CallTool = %v, %v (handler saw subject %q before VerifyCall)", res, err, seen)
	}
	res, err = s.CallTool(ctx, &pluginpb.CallProvidedToolRequest{Tool: "echo", ArgumentsJson: `{"x":1}`, TxnToken: tts.token(t, "kit/echo", `{}`, nil)})
	if err != nil || !res.GetIsError() || !strings.Contains(res.GetContent()[0].GetText(), "arguments differ") {
		t.Fatalf("changed arguments: %v, %v", res, err)
	}
	var c sdk.Caller
	if _, err := c.VerifyCall("echo", json.RawMessage(`{}`)); !errors.Is(err, sdk.ErrNoTxnToken) {
		t.Fatalf("VerifyCall on a zero Caller: %v", err)
	}
	// Keys that are not a usable JWK Set are refused at ListTools.
	_, err = s.ListTools(ctx, &pluginpb.ListProvidedToolsRequest{TxnTokenJwks: `{"keys":[{"kty":"RSA","kid":"r"}]}`, TrustDomain: testTD, PluginName: "kit"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a JWK Set without an ES256 key: %v", err)
	}
}

// BenchmarkVerifyCall is what a tool plugin spends on each call's
// Transaction Token: parse, ES256 signature, claims, and the digest of the
// arguments in hand.
func BenchmarkVerifyCall(b *testing.B) {
	tts := newTestTTS(b, "k1")
	s := toolServer(b, tts, sdk.ToolSet{Name: "kit", Tools: []sdk.Tool{{Name: "pay", TxnFields: []string{"amount"},
		Handler: func(context.Context, sdk.Caller, json.RawMessage) (string, error) { return "", nil }}}})
	const args = `{"amount":12.5,"currency":"EUR","to":"bob","memo":"invoice 2026-0417"}`
	req := &pluginpb.CallProvidedToolRequest{Tool: "pay", ArgumentsJson: args, TxnToken: tts.token(b, "kit/pay", args, map[string]any{"amount": 12.5})}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := s.CallTool(ctx, req); err != nil || res.GetIsError() {
			b.Fatal(res, err)
		}
	}
}
