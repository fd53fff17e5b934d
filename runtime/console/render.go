package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/console.css static/live.js
var staticFiles embed.FS

// funcs are the templates' helpers. Every string a page shows that the
// console did not write goes through v (or lines): what a person could
// not see, or that could reorder the text around it, is shown escaped.
var funcs = template.FuncMap{
	"v":          consent.Visible,
	"lines":      visibleLines,
	"short":      short,
	"when":       when,
	"until":      until,
	"digest":     digest,
	"pathEscape": url.PathEscape,
}

// Pages of the console, each the layout with its content.
var (
	messagePage   = parsePage("templates/message.html")
	agentsPage    = parsePage("templates/agents.html")
	tasksPage     = parsePage("templates/tasks.html")
	taskPage      = parsePage("templates/task.html")
	approvalsPage = parsePage("templates/approvals.html")
	auditPage     = parsePage("templates/audit.html")
	tracePage     = parsePage("templates/trace.html")
	trustPage     = parsePage("templates/trust.html")
)

// parsePage parses the layout with one page's content; the templates are
// embedded, so a parse error is a defect every test run catches.
func parsePage(file string) *template.Template {
	return template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", file))
}

// viewer is the signed-in user as the pages show them.
type viewer struct {
	User  string
	Name  string
	Admin bool
}

// pageData is what the templates see.
type pageData struct {
	Title string
	// Prefix starts every link of the console.
	Prefix string
	// Viewer is nil on a page shown to a browser that is not signed in.
	Viewer *viewer
	// CSRF is the token of the session's forms.
	CSRF string
	// Nav is the page's entry in the navigation.
	Nav string
	// Live loads the script of the live task view.
	Live bool
	Now  time.Time
	Page any
}

// message is a page that only says something, with a link when Link is
// set.
type message struct {
	Message string
	Link    string
}

// render writes tmpl with page as the response, with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, tmpl *template.Template, title, nav string, page any) {
	d := pageData{Title: title, Prefix: c.prefix, Nav: nav, Now: c.now(), Page: page}
	if v, ok := page.(taskView); ok && v.Stream != "" {
		d.Live = true
	}
	if s != nil {
		d.Viewer = &viewer{User: s.user, Name: s.name, Admin: s.admin}
		if cookies := c.cookies.Load(); cookies != nil {
			d.CSRF = cookies.SessionCSRFToken(s.cookie)
		}
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "layout", d); err != nil {
		c.log.ErrorContext(r.Context(), "page render failed", slog.String("page", title), slog.Any("error", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// message writes a page that only says msg, with a link to link when set.
func (c *Console) message(w http.ResponseWriter, r *http.Request, s *session, status int, title, msg, link string) {
	c.render(w, r, s, status, messagePage, title, "", message{Message: msg, Link: link})
}

// staticFile is an embedded file as it is served.
type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

// static are the console's stylesheet (the authorization server's pages'
// rules, then the console's) and its one script.
var static = func() map[string]staticFile {
	css, err := staticFiles.ReadFile("static/console.css")
	if err != nil {
		panic(err)
	}
	js, err := staticFiles.ReadFile("static/live.js")
	if err != nil {
		panic(err)
	}
	file := func(body []byte, ct string) staticFile {
		sum := sha256.Sum256(body)
		return staticFile{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return map[string]staticFile{
		"console.css": file(append([]byte(string(userauth.Stylesheet())+"\n"), css...), "text/css; charset=utf-8"),
		"live.js":     file(js, "text/javascript; charset=utf-8"),
	}
}()

func serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := static[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// visibleLines splits s into lines, each made visible.
func visibleLines(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = consent.Visible(l)
	}
	return lines
}

// short cuts s to n characters, marking the cut.
func short(n int, s string) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// timeLayout is how the pages write a time: UTC, to the second.
const timeLayout = "2006-01-02 15:04:05 UTC"

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(timeLayout)
}

// until says how far t is from now, for a person: "in 59 min", "3 h
// ago".
func until(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

// digest shortens a hex digest for a table: its first 16 digits.
func digest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) <= 16 {
		return d
	}
	return d[:16] + "…"
}
