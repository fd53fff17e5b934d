package wimse

import (
	"errors"
	"strings"
	"testing"
)

// serializeDictionary writes members back as a Dictionary (RFC 8941
// §4.1.2), for round-trip tests.
func serializeDictionary(members []sfMember) string {
	parts := make([]string, len(members))
	for i, m := range members {
		var b strings.Builder
		b.WriteString(m.key)
		switch {
		case m.inner:
			b.WriteByte('=')
			b.WriteString(serializeInnerList(m.items, m.params))
		case m.item.kind == sfBoolean && m.item.flag:
			serializeParams(&b, m.params)
		default:
			b.WriteByte('=')
			serializeBare(&b, m.item)
			serializeParams(&b, m.params)
		}
		parts[i] = b.String()
	}
	return strings.Join(parts, ", ")
}

func TestParseDictionary(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical serialisation; "" means a parse error
	}{
		{`sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="k1"`,
			`sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="k1"`},
		{`wimse=("@method"  "@request-target" );nonce="a\"b\\c";tag="t"`,
			`wimse=("@method" "@request-target");nonce="a\"b\\c";tag="t"`},
		{`  a=1 ,b=?0,	c, d=tok/en:x;p, e=-12.50, f=:AQID:, g=:AQI:, h=()`,
			`a=1, b=?0, c, d=tok/en:x;p, e=-12.5, f=:AQID:, g=:AQI=:, h=()`},
		{`a=00042, b=0.000, c=-0, d=*x`, `a=42, b=0.0, c=0, d=*x`},
		{`x=("a";q=?1;r=2 b);s`, `x=("a";q;r=2 b);s`},
		{`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, unixsum=:AA==:`,
			`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, unixsum=:AA==:`},
		{``, ""},
		{`A=1`, ""},
		{`a=1,`, ""},
		{`a=1,,b=2`, ""},
		{`a=1 b=2`, ""},
		{`a=1, a=2`, ""},
		{`a=1;p=1;p=2`, ""},
		{`a=(`, ""},
		{`a=("x"`, ""},
		{`a=("x""y")`, ""},
		{`a=((1))`, ""},
		{`a="unterminated`, ""},
		{`a="bad\n"`, ""},
		{"a=\"tab\there\"", ""},
		{`a="é"`, ""},
		{`a=:not base64!:`, ""},
		{`a=:AQID`, ""},
		{`a=:A=QI:`, ""},
		{`a=?2`, ""},
		{`a=?`, ""},
		{`a=-`, ""},
		{`a=1234567890123456`, ""},
		{`a=1234567890123.1`, ""},
		{`a=1.1234`, ""},
		{`a=1.`, ""},
		{`a=@1618884473`, ""},
		{`a=%"display"`, ""},
		{`a=1;`, ""},
		{`a=1;P=1`, ""},
	}
	for _, tt := range tests {
		got, err := parseDictionary(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseDictionary(%q) = %s, want an error", tt.in, serializeDictionary(got))
			} else if !errors.Is(err, errSF) {
				t.Errorf("parseDictionary(%q): err = %v, want errSF", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDictionary(%q): %v", tt.in, err)
			continue
		}
		if s := serializeDictionary(got); s != tt.want {
			t.Errorf("parseDictionary(%q) serialises as %s, want %s", tt.in, s, tt.want)
		}
	}
}

func TestParseDictionaryLimits(t *testing.T) {
	many := strings.Repeat("a", 0)
	for i := 0; i <= sfMaxMembers; i++ {
		if i > 0 {
			many += ", "
		}
		many += "k" + strings.Repeat("x", i)
	}
	if _, err := parseDictionary(many); err == nil {
		t.Error("too many members accepted")
	}
	items := "a=(" + strings.TrimSpace(strings.Repeat(`"x" `, sfMaxItems+1)) + ")"
	if _, err := parseDictionary(items); err == nil {
		t.Error("too many inner list items accepted")
	}
	if _, err := parseDictionary("a=\"" + strings.Repeat("x", sfMaxInput) + "\""); err == nil {
		t.Error("oversized field accepted")
	}
}

// FuzzParseDictionary checks that the structured-field parser never panics,
// and that what it accepts serialises to a form it parses back to the same
// serialisation (so a signature base rebuilt from parsed parameters is
// stable).
func FuzzParseDictionary(f *testing.F) {
	for _, s := range []string{
		`wimse=("@method" "@request-target" "workload-identity-token");created=1618884473;expires=1618884533;nonce="abcd1111";tag="wimse-workload-to-workload";wimse-aud="https://svcb.example.com/gimme-ice-cream";wimse-sign-response`,
		`sig1=("@method" "content-digest";sf "x";key="a");alg="ed25519", proxy=("@authority")`,
		`wimse=:dGVzdA==:, other=:AA:`,
		`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`,
		`a=1.5, b=-0.25, c=?0, d=tok, e`,
		`a="\\\""`,
		``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		members, err := parseDictionary(in)
		if err != nil {
			if members != nil {
				t.Fatal("members returned with an error")
			}
			return
		}
		once := serializeDictionary(members)
		again, err := parseDictionary(once)
		if err != nil {
			t.Fatalf("serialisation %q of %q does not parse: %v", once, in, err)
		}
		if twice := serializeDictionary(again); twice != once {
			t.Fatalf("serialisation not stable: %q → %q", once, twice)
		}
	})
}
