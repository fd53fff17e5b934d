package consent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

func TestPrettyJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty object", `{}`, `{}`},
		{"order and numbers kept", `{"b":1.50,"a":[1e3,-0]}`, "{\n  \"b\": 1.50,\n  \"a\": [\n    1e3,\n    -0\n  ]\n}"},
		{"escapes", `"a\"b\\c\nd\te"`, `"a\"b\\c\nd\te"`},
		{"invisible characters", "\"x\u202ey\u200b\u0000z\U000E0001\"", `"x\u202ey\u200b\u0000z\udb40\udc01"`},
		{"carriage return", `"a\rb"`, `"a\u000db"`},
		{"literals", `[true,false,null]`, "[\n  true,\n  false,\n  null\n]"},
		{"not JSON shown as text", "{\"a\":\u202e", `{"a":\u202e`},
		{"trailing data", `{} {}`, `{} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := prettyJSON(json.RawMessage(tt.in)); got != tt.want {
				t.Fatalf("prettyJSON(%q) =\n%s\nwant\n%s", tt.in, got, tt.want)
			}
		})
	}
	deep := strings.Repeat("[", maxPrettyDepth+5) + strings.Repeat("]", maxPrettyDepth+5)
	if got := prettyJSON(json.RawMessage(deep)); got != deep {
		t.Fatalf("too deep: %q", got)
	}
}

func TestVisible(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":       "plain text",
		"tab\there":        `tab\u0009here`,
		"rlo\u202e":        `rlo\u202e`,
		"bad \xff utf8":    `bad \ufffd utf8`,
		"emoji 🙂 kept":     "emoji 🙂 kept",
		"line\u2028sep":    `line\u2028sep`,
		"tag \U000E0041 x": `tag \udb40\udc41 x`,
	} {
		if got := visible(in); got != want {
			t.Errorf("visible(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewViewRefusesAForeignDigest(t *testing.T) {
	a := &authserver.Approval{Expires: time.Now().Add(time.Minute),
		AuthorizationDetails: json.RawMessage(`[{"type":"agenthost_tool_call","tool":"t","arguments":{"amount":1000},"args_sha256":"` +
			strings.Repeat("0", 64) + `"}]`)}
	if _, err := newView(a, time.Now()); err == nil {
		t.Fatal("a tool call whose digest is not its arguments' was shown")
	}
	d, _ := txntoken.ArgsDigest(json.RawMessage(`{"amount":1000}`))
	a.AuthorizationDetails = json.RawMessage(`[{"type":"agenthost_tool_call","tool":"t","arguments":{"amount":1000},"args_sha256":"` + d + `"},` +
		`{"type":"other","z":"last","a":{"k":[1]}}]`)
	v, err := newView(a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Details) != 2 || !v.Details[0].ToolCall || v.Details[0].Digest != d || v.Details[1].ToolCall ||
		len(v.Details[1].Fields) != 2 || v.Details[1].Fields[0].Name != "a" || v.Details[1].Fields[1].Value != `"last"` {
		t.Fatalf("view %+v", v.Details)
	}
}

// FuzzPrettyJSON checks that what the page shows of valid JSON is JSON
// that means the same (the same canonical digest) and holds no character
// a person cannot see.
func FuzzPrettyJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2.50,"x"]}`, `"\u202e"`, "\"\u200b\"", `[[[]]]`, `{"a":{"b":null}}`, `1e400`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		want, err := txntoken.ArgsDigest(json.RawMessage(in))
		if err != nil {
			return
		}
		out := prettyJSON(json.RawMessage(in))
		if lines := strings.Split(out, "\n"); visible(strings.Join(lines, "")) != strings.Join(lines, "") {
			t.Fatalf("prettyJSON(%q) = %q holds invisible characters", in, out)
		}
		if strings.Count(in, "[")+strings.Count(in, "{") > maxPrettyDepth {
			return // may be shown as text
		}
		got, err := txntoken.ArgsDigest(json.RawMessage(out))
		if err != nil || got != want {
			t.Fatalf("prettyJSON(%q) = %q means something else (%v)", in, out, err)
		}
	})
}

// TestNewViewShowsTheCaller: the agent a tool call names is shown, made
// visible like every other field.
func TestNewViewShowsTheCaller(t *testing.T) {
	args := `{"amount":5}`
	d, err := txntoken.ArgsDigest(json.RawMessage(args))
	if err != nil {
		t.Fatal(err)
	}
	a := &authserver.Approval{Expires: time.Now().Add(time.Minute),
		AuthorizationDetails: json.RawMessage(`[{"type":"agenthost_tool_call","tool":"payments/transfer","agent":"payer\u202e","arguments":` +
			args + `,"args_sha256":"` + d + `"}]`)}
	v, err := newView(a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Details) != 1 || v.Details[0].Agent != `payer\u202e` {
		t.Fatalf("details %+v", v.Details)
	}
}
