package consent

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

//go:embed templates/*.html
var templateFiles embed.FS

var (
	approveTemplate = parsePage("templates/approve.html")
	messageTemplate = parsePage("templates/message.html")
)

// parsePage parses the layout with one page's content; the templates are
// embedded, so a parse error is a defect every test run catches.
func parsePage(file string) *template.Template {
	return template.Must(template.New("layout").Funcs(template.FuncMap{"stylesheet": userauth.Stylesheet}).
		ParseFS(templateFiles, "templates/layout.html", file))
}

// contentSecurityPolicy is the authorization server pages' policy: no
// scripts or other sources, inline styles, forms to this origin only, no
// framing.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

// pageData is what the templates see.
type pageData struct {
	Title string
	// The approval page.
	User   string
	View   *view
	Action string
	CSRF   string
	// A message page.
	Message messagePage
}

// messagePage is a page that only says something, with a link (to sign
// in) when Link is set.
type messagePage struct {
	Title    string
	Message  string
	Link     string
	LinkText string
}

// view is a request as the approval page shows it; every string is
// already made visible (see visible).
type view struct {
	BindingMessage string
	ClientLabel    string
	ClientID       string
	Scopes         []string
	Resources      []string
	Details        []detailView
	ExpiresIn      string
	ExpiresAt      string
}

// detailView is one authorization detail: a tool call, or any other type
// field by field.
type detailView struct {
	Type      string
	ToolCall  bool
	Tool      string
	Agent     string
	Locations []string
	Arguments string
	Digest    string
	Fields    []fieldView
}

type fieldView struct{ Name, Value string }

// newView prepares a for the page at now. A tool call whose args_sha256
// is not the digest of its arguments is an error: the page would show
// one call and the token bind another.
func newView(a *authserver.Approval, now time.Time) (*view, error) {
	v := &view{
		BindingMessage: visible(a.BindingMessage),
		ClientID:       visible(a.ClientID),
		ExpiresAt:      a.Expires.UTC().Format("15:04:05 MST, 2 Jan 2006"),
		ExpiresIn:      remaining(a.Expires.Sub(now)),
	}
	if a.ClientName != "" && a.ClientName != a.ClientID {
		v.ClientLabel = visible(a.ClientName)
	}
	for _, sc := range a.Scopes {
		if sc != "openid" {
			v.Scopes = append(v.Scopes, visible(sc))
		}
	}
	for _, r := range a.Resources {
		v.Resources = append(v.Resources, visible(r))
	}
	if len(a.AuthorizationDetails) == 0 {
		return v, nil
	}
	var details []map[string]json.RawMessage
	if err := json.Unmarshal(a.AuthorizationDetails, &details); err != nil {
		return nil, fmt.Errorf("consent: authorization_details: %w", err)
	}
	for i, d := range details {
		dv, err := newDetailView(d)
		if err != nil {
			return nil, fmt.Errorf("consent: authorization_details[%d]: %w", i, err)
		}
		v.Details = append(v.Details, dv)
	}
	return v, nil
}

func newDetailView(d map[string]json.RawMessage) (detailView, error) {
	var typ string
	if err := json.Unmarshal(d["type"], &typ); err != nil {
		return detailView{}, errors.New("no string type")
	}
	dv := detailView{Type: visible(typ)}
	if typ != oauth.AuthorizationDetailsToolCall {
		names := make([]string, 0, len(d))
		for name := range d {
			if name != "type" {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			dv.Fields = append(dv.Fields, fieldView{Name: visible(name), Value: prettyJSON(d[name])})
		}
		return dv, nil
	}
	var tc oauth.ToolCallDetail
	if err := json.Unmarshal(mustJSON(d), &tc); err != nil {
		return detailView{}, fmt.Errorf("tool call: %w", err)
	}
	args := tc.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	digest, err := txntoken.ArgsDigest(args)
	if err != nil {
		return detailView{}, fmt.Errorf("tool call arguments: %w", err)
	}
	if tc.ArgsSHA256 != digest {
		return detailView{}, errors.New("tool call args_sha256 is not the digest of its arguments")
	}
	dv.ToolCall = true
	dv.Tool = visible(tc.Tool)
	dv.Agent = visible(tc.Agent)
	for _, l := range tc.Locations {
		dv.Locations = append(dv.Locations, visible(l))
	}
	dv.Arguments = prettyJSON(args)
	dv.Digest = digest
	return dv, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// remaining says how long is left, for a person.
func remaining(d time.Duration) string {
	switch {
	case d <= 0:
		return "no time"
	case d < time.Minute:
		return "less than a minute"
	case d < 2*time.Minute:
		return "about a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	default:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

// visible returns s with every character a person could not see, or that
// could reorder or hide what is around it (controls, format characters
// such as bidirectional overrides and zero-width joiners, line and
// paragraph separators, invalid UTF-8), written as a \u escape, so what
// the page shows is what the request says.
func visible(s string) string {
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteString(`\ufffd`)
		case unicode.IsGraphic(r):
			b.WriteRune(r)
		default:
			writeEscape(&b, r)
		}
	}
	return b.String()
}

// writeEscape writes r as a JSON \u escape (a surrogate pair beyond the
// basic plane).
func writeEscape(b *strings.Builder, r rune) {
	if r > 0xFFFF {
		r -= 0x10000
		fmt.Fprintf(b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		return
	}
	fmt.Fprintf(b, `\u%04x`, r)
}

// maxPrettyDepth caps the nesting prettyJSON follows.
const maxPrettyDepth = 64

// prettyJSON indents the JSON value raw for reading: members in their
// original order, numbers as written, strings with what visible escapes
// escaped. What it cannot read is shown as visible text, unindented.
func prettyJSON(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	if err := writePretty(dec, &b, 0); err != nil {
		return visible(string(raw))
	}
	if _, err := dec.Token(); err != io.EOF {
		return visible(string(raw))
	}
	return b.String()
}

func writePretty(dec *json.Decoder, b *strings.Builder, depth int) error {
	if depth > maxPrettyDepth {
		return errors.New("too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	indent := func(n int) {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("  ", n))
	}
	switch v := tok.(type) {
	case json.Delim:
		closing := map[json.Delim]string{'{': "}", '[': "]"}[v]
		if closing == "" {
			return errors.New("unexpected delimiter")
		}
		b.WriteString(v.String())
		n := 0
		for dec.More() {
			if n > 0 {
				b.WriteByte(',')
			}
			indent(depth + 1)
			if v == '{' {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				name, ok := key.(string)
				if !ok {
					return errors.New("member name is not a string")
				}
				writeString(b, name)
				b.WriteString(": ")
			}
			if err := writePretty(dec, b, depth+1); err != nil {
				return err
			}
			n++
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		if n > 0 {
			indent(depth)
		}
		b.WriteString(closing)
	case string:
		writeString(b, v)
	case json.Number:
		b.WriteString(v.String())
	case bool:
		fmt.Fprint(b, v)
	case nil:
		b.WriteString("null")
	default:
		return errors.New("unexpected token")
	}
	return nil
}

// writeString writes s as a JSON string with the escapes visible uses,
// besides the quote and the backslash.
func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsGraphic(r):
			b.WriteRune(r)
		default:
			writeEscape(b, r)
		}
	}
	b.WriteByte('"')
}

// render executes t into a buffer, so a failure writes nothing, then sends
// the page with the headers of the authorization server's pages.
func render(w http.ResponseWriter, status int, t *template.Template, data pageData) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("consent: render page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("consent: write page: %w", err)
	}
	return nil
}
