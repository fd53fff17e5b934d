package txntoken_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/agenthost/agenthost/credentials/txntoken"
)

func digest(t *testing.T, args string) string {
	t.Helper()
	d, err := txntoken.ArgsDigest(json.RawMessage(args))
	if err != nil {
		t.Fatalf("ArgsDigest(%s): %v", args, err)
	}
	return d
}

func TestArgsDigestKnownValue(t *testing.T) {
	sum := sha256.Sum256([]byte(`{"amount":3,"payee":"bob"}`))
	if got, want := digest(t, testArgs), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("ArgsDigest = %s, want %s (SHA-256 of the sorted compact form)", got, want)
	}
	sum = sha256.Sum256([]byte(`{}`))
	if got, want := digest(t, ""), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("ArgsDigest of no arguments = %s, want the digest of {}", got)
	}
}

func TestArgsDigestEquivalence(t *testing.T) {
	tests := []struct {
		name  string
		a, b  string
		equal bool
	}{
		{"key order", `{"a":1,"b":2}`, `{"b":2,"a":1}`, true},
		{"whitespace", `{"a":1,"b":[1,2]}`, " {\n\t\"a\" : 1 ,\r\n \"b\":[ 1 , 2 ] }\n", true},
		{"nested key order", `{"o":{"x":1,"y":{"p":true,"q":null}}}`, `{"o":{"y":{"q":null,"p":true},"x":1}}`, true},
		{"escaped and literal characters", `{"s":"é\/"}`, `{"s":"\u00e9/"}`, true},
		{"integer and decimal of the same value", `{"amount":3}`, `{"amount":3.0}`, true},
		{"exponent form", `{"amount":100}`, `{"amount":1e2}`, true},
		{"negative zero", `{"n":-0}`, `{"n":0.0}`, true},
		{"small fraction", `{"n":0.05}`, `{"n":5e-2}`, true},
		{"changed value", `{"amount":3}`, `{"amount":30}`, false},
		{"changed fraction", `{"amount":3.1}`, `{"amount":3.01}`, false},
		{"precision beyond float64", `{"n":9007199254740993}`, `{"n":9007199254740992}`, false},
		{"number and string", `{"amount":3}`, `{"amount":"3"}`, false},
		{"array order", `{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{"changed key", `{"amount":3}`, `{"Amount":3}`, false},
		{"null and absent", `{"a":null}`, `{}`, false},
		{"empty and null", ``, `null`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := digest(t, tt.a) == digest(t, tt.b); got != tt.equal {
				t.Fatalf("digests equal = %v, want %v", got, tt.equal)
			}
		})
	}
}

func TestArgsDigestRefuses(t *testing.T) {
	for name, args := range map[string]string{
		"not JSON":            `{"a":`,
		"trailing data":       `{"a":1} {}`,
		"trailing garbage":    `{"a":1}x`,
		"duplicate key":       `{"a":1,"a":2}`,
		"nested duplicate":    `{"o":{"a":1,"a":1}}`,
		"invalid UTF-8":       "{\"a\":\"\xff\"}",
		"lone high surrogate": `{"a":"\ud800"}`,
		"lone low surrogate":  `{"a":"\udc00x"}`,
		"huge exponent":       `{"a":1e99999999999999999999}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := txntoken.ArgsDigest(json.RawMessage(args)); !errors.Is(err, txntoken.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := txntoken.ArgsDigest(json.RawMessage(`{"a":"\ud83d\ude00"}`)); err != nil {
		t.Fatalf("surrogate pair refused: %v", err)
	}
}

func TestCheckCall(t *testing.T) {
	claims := func(tb testing.TB, tctx txntoken.Object) *txntoken.Claims {
		c := request(tb)
		c.TransactionContext = tctx
		return &c
	}
	bound := func(tb testing.TB) *txntoken.Claims {
		return claims(tb, callContext(tb, testTool, testArgs, map[string]any{"amount": 3}))
	}
	tests := []struct {
		name   string
		claims func(testing.TB) *txntoken.Claims
		tool   string
		args   string
		want   error
	}{
		{"same call", bound, testTool, testArgs, nil},
		{"same call, keys reordered", bound, testTool, `{"amount":3,"payee":"bob"}`, nil},
		{"different tool", bound, "payments/refund", testArgs, txntoken.ErrCallMismatch},
		{"amount 3 → 30", bound, testTool, `{"payee":"bob","amount":30}`, txntoken.ErrCallMismatch},
		{"extra argument", bound, testTool, `{"payee":"bob","amount":3,"memo":"x"}`, txntoken.ErrCallMismatch},
		{"no tctx", func(tb testing.TB) *txntoken.Claims { return claims(tb, txntoken.Object{}) },
			testTool, testArgs, txntoken.ErrCallMismatch},
		{"tctx without args_sha256", func(tb testing.TB) *txntoken.Claims {
			return claims(tb, mustObject(tb, map[string]any{"tool": testTool}))
		}, testTool, testArgs, txntoken.ErrCallMismatch},
		{"tool member not a string", func(tb testing.TB) *txntoken.Claims {
			d, _ := txntoken.ArgsDigest(json.RawMessage(testArgs))
			return claims(tb, mustObject(tb, map[string]any{"tool": []string{testTool}, "args_sha256": d}))
		}, testTool, testArgs, txntoken.ErrCallMismatch},
		{"args not JSON", bound, testTool, `{"payee":`, txntoken.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.claims(t).CheckCall(tt.tool, json.RawMessage(tt.args))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckCall: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckCall err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckField(t *testing.T) {
	c := request(t)
	c.TransactionContext = callContext(t, testTool, testArgs, map[string]any{
		"amount": 3, "payee": "bob", "limits": map[string]any{"b": 2, "a": 1},
	})
	tests := []struct {
		name  string
		field string
		value any
		want  error
	}{
		{"int", "amount", 3, nil},
		{"float of the same value", "amount", 3.0, nil},
		{"json.Number in decimal form", "amount", json.Number("3.00"), nil},
		{"raw JSON", "amount", json.RawMessage(" 3 "), nil},
		{"string", "payee", "bob", nil},
		{"object, other key order", "limits", json.RawMessage(`{"a":1,"b":2}`), nil},
		{"amount 30", "amount", 30, txntoken.ErrCallMismatch},
		{"amount as string", "amount", "3", txntoken.ErrCallMismatch},
		{"other payee", "payee", "mallory", txntoken.ErrCallMismatch},
		{"absent field", "currency", "EUR", txntoken.ErrCallMismatch},
		{"value not encodable", "amount", make(chan int), txntoken.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.CheckField(tt.field, tt.value)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckField: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckField err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCallContext(t *testing.T) {
	o := callContext(t, testTool, testArgs, map[string]any{"amount": 3})
	want := `{"amount":3,"args_sha256":"` + digest(t, testArgs) + `","tool":"payments/transfer"}`
	if o.String() != want {
		t.Fatalf("CallContext = %s, want %s", o, want)
	}
	for name, tc := range map[string]struct {
		tool   string
		args   string
		fields map[string]any
	}{
		"empty tool":                {"", testArgs, nil},
		"field named tool":          {testTool, testArgs, map[string]any{txntoken.MemberTool: "x"}},
		"field named args_sha256":   {testTool, testArgs, map[string]any{txntoken.MemberArgsSHA256: "x"}},
		"args not JSON":             {testTool, `{`, nil},
		"field value not encodable": {testTool, testArgs, map[string]any{"f": func() {}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := txntoken.CallContext(tc.tool, json.RawMessage(tc.args), tc.fields); !errors.Is(err, txntoken.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
