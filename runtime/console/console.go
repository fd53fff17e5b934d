package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

// Path is where the console is served on the issuer's origin: mount
// [Console.Handler] there without stripping the prefix.
const Path = "/console/"

// base is Path without its final slash, the prefix of every route.
const base = "/console"

// CookieName is the console's session cookie ("__Host-" prefixed with
// https); its CSRF cookie adds "_csrf".
const CookieName = "agenthost_console"

// DefaultSessionTTL is how long a console sign-in lasts by default.
const DefaultSessionTTL = 8 * time.Hour

// Scopes are what the console asks the authorization server for: the
// userinfo endpoint's scope and the user's name.
var Scopes = []string{"openid", "profile"}

// RedirectURI is the console's redirect URI at the authorization server
// whose issuer is issuer: <issuer>/console/callback.
func RedirectURI(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + Path + "callback"
}

// Config configures [New].
type Config struct {
	// Backend is the host the console shows. Required.
	Backend Backend
	// Issuer is the authorization server's issuer; the console is served
	// on its origin, under Path. Required.
	Issuer string
	// Metadata is the authorization server's metadata: its
	// authorization, token and userinfo endpoints are required, its
	// revocation endpoint is used when present.
	Metadata oauth.ServerMetadata
	// ClientID is the console's client at the authorization server: a
	// public client with the authorization code grant (PKCE), the
	// redirect URI [RedirectURI] and the [Scopes]. Required.
	ClientID string
	// Admins are the users who see everything and may act (quarantine
	// and release agents); every other signed-in user sees their own
	// tasks and approval requests.
	Admins []string
	// SessionTTL is how long a sign-in lasts; zero means
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// Store keeps the console's sessions, its sign-ins in progress and
	// the key that seals its cookies, in namespaces "console.*". Consoles
	// sharing a store (hosts of one deployment behind a load balancer)
	// share them: a browser signed in at one is signed in at all, and a
	// restart signs nobody out. Its expired records are reclaimed by
	// whoever purges it (the host). Nil means a store in memory of the
	// console's own: sessions are known to this console only, end when
	// it stops, and Run purges them.
	Store store.KV
	// HTTPClient sends the token, userinfo and revocation requests; nil
	// means a client with a 10 s timeout that follows no redirect.
	HTTPClient *http.Client
	// Logger receives sign-ins, sign-outs and actions; nil means silent.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console serves the console's pages. It is safe for concurrent use.
type Console struct {
	b        Backend
	issuer   string
	md       oauth.ServerMetadata
	clientID string
	// prefix is what links start with: the issuer's path and base.
	prefix string
	secure bool
	admins []string
	ttl    time.Duration
	hc     *http.Client
	log    *slog.Logger
	now    func() time.Time
	kv     store.KV
	// mem is kv when it is the console's own store in memory, which Run
	// purges.
	mem *memstore.Store
	// cookies seals the session cookie, under the key kept in kv; it is
	// made on first use (Console.sealer) from cookieConfig.
	cookies      atomic.Pointer[userauth.Sessions]
	cookieConfig userauth.SessionConfig
	sessions     *sessionStore
	logins       *loginStore
	mux          *http.ServeMux

	// closing ends the event streams when the host stops.
	closing   chan struct{}
	closeOnce sync.Once
	streams   atomic.Int32

	// verifyMu serialises verifications of the audit log; verified is
	// the last one.
	verifyMu sync.Mutex
	verified atomic.Pointer[Verification]
}

// New checks cfg and returns the console.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Backend == nil:
		return nil, errors.New("console: Backend is required")
	case cfg.ClientID == "":
		return nil, errors.New("console: ClientID is required")
	case cfg.Metadata.AuthorizationEndpoint == "" || cfg.Metadata.TokenEndpoint == "" || cfg.Metadata.UserinfoEndpoint == "":
		return nil, errors.New("console: the authorization server has no authorization, token or userinfo endpoint: nobody can sign in")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("console: issuer %q is not an http or https URL", cfg.Issuer)
	}
	c := &Console{
		b:        cfg.Backend,
		issuer:   cfg.Issuer,
		md:       cfg.Metadata,
		clientID: cfg.ClientID,
		prefix:   strings.TrimSuffix(u.Path, "/") + base,
		secure:   u.Scheme == "https",
		admins:   slices.Clone(cfg.Admins),
		ttl:      cfg.SessionTTL,
		hc:       cfg.HTTPClient,
		log:      cfg.Logger,
		now:      cfg.Now,
		kv:       cfg.Store,
		closing:  make(chan struct{}),
	}
	if c.ttl == 0 {
		c.ttl = DefaultSessionTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if c.kv == nil {
		c.mem = memstore.New(c.now)
		c.kv = c.mem
	}
	// The cookie seals no more than the session's ID and user; the
	// session itself is kept in the store, and so is the sealing key,
	// which every console sharing the store reads (Console.sealer, on
	// first use, so that a console starts while its store is down). The
	// configuration is checked now, with a key of zeros never used.
	c.cookieConfig = userauth.SessionConfig{CookieName: CookieName, Secure: c.secure, TTL: c.ttl, Now: c.now}
	check := c.cookieConfig
	check.Key = make([]byte, sealingKeyLen)
	if _, err := userauth.NewSessions(check); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c.sessions = newSessionStore(c.kv, c.now)
	c.logins = newLoginStore(c.kv, c.now)
	c.routes()
	return c, nil
}

// Handler serves the console under Path.
func (c *Console) Handler() http.Handler { return withHeaders(c.secure, c.mux) }

// purgeInterval is how often Run purges the console's own store.
const purgeInterval = time.Minute

// Run serves until ctx is done, then ends the open event streams so the
// HTTP server can stop at once. Without Config.Store, it purges the
// console's store in memory of its expired sessions and sign-ins.
func (c *Console) Run(ctx context.Context) error {
	defer c.closeOnce.Do(func() { close(c.closing) })
	var purge <-chan time.Time
	if c.mem != nil {
		t := time.NewTicker(purgeInterval)
		defer t.Stop()
		purge = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-purge:
			_, _ = c.mem.Purge(ctx)
		}
	}
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET "+base+"/{$}", c.signedIn(false, c.home))
	m.HandleFunc("GET "+base+"/login", c.login)
	m.HandleFunc("GET "+base+"/callback", c.callback)
	m.HandleFunc("POST "+base+"/logout", c.form(false, c.logout))
	m.HandleFunc("GET "+base+"/agents", c.signedIn(true, c.agents))
	m.HandleFunc("POST "+base+"/agents/{name}/quarantine", c.form(true, c.quarantine))
	m.HandleFunc("POST "+base+"/agents/{name}/release", c.form(true, c.release))
	m.HandleFunc("GET "+base+"/tasks", c.signedIn(false, c.tasks))
	m.HandleFunc("GET "+base+"/tasks/{id}", c.signedIn(false, c.task))
	m.HandleFunc("GET "+base+"/tasks/{id}/events", c.signedIn(false, c.taskEvents))
	m.HandleFunc("GET "+base+"/approvals", c.signedIn(false, c.approvals))
	m.HandleFunc("GET "+base+"/audit", c.signedIn(true, c.audit))
	m.HandleFunc("POST "+base+"/audit/verify", c.form(true, c.verify))
	m.HandleFunc("GET "+base+"/audit/txn/{id}", c.signedIn(true, c.trace))
	m.HandleFunc("GET "+base+"/trust", c.signedIn(true, c.trust))
	m.HandleFunc("GET "+base+"/static/{file}", serveStatic)
	m.HandleFunc(base+"/", func(w http.ResponseWriter, r *http.Request) {
		c.message(w, r, nil, http.StatusNotFound, "Not found", "The console has no such page.", "")
	})
	c.mux = m
}

// isAdmin reports whether user is one of the console's admins.
func (c *Console) isAdmin(user string) bool { return user != "" && slices.Contains(c.admins, user) }

// maxFormBytes caps a posted form.
const maxFormBytes = 16 << 10

// signedIn serves h to a browser signed in to the console (an admin's when
// admin is set). A browser that is not is sent to sign in and back; a user
// who is not an admin gets 403. When the console cannot tell (its store is
// unavailable) it answers 503.
func (c *Console) signedIn(admin bool, h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if err != nil {
			c.unavailable(w, r, err, "", "")
			return
		}
		if s == nil {
			next := r.URL.EscapedPath()
			if r.URL.RawQuery != "" {
				next += "?" + r.URL.RawQuery
			}
			if strings.HasSuffix(r.URL.Path, "/events") {
				// An event stream cannot sign in: it ends.
				http.Error(w, "signed out", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, c.prefix+"/login?next="+url.QueryEscape(c.localNext(next)), http.StatusSeeOther)
			return
		}
		if admin && !s.admin {
			c.message(w, r, s, http.StatusForbidden, "Operators only",
				"This page is for the console's operators (console.admins). You see your own tasks and approval requests.", "")
			return
		}
		h(w, r, s)
	}
}

// form serves h to a form posted in a console session (an admin's when
// admin is set), carrying the session's CSRF token: the token of
// userauth.Sessions, bound to the session, as every form of the host's
// pages carries. Anything else is refused with 403 and changes nothing.
func (c *Console) form(admin bool, h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			c.message(w, r, nil, http.StatusBadRequest, "Bad request", "The form could not be read.", "")
			return
		}
		s, err := c.session(r)
		if err != nil {
			c.unavailable(w, r, err, "", "")
			return
		}
		if s == nil {
			c.message(w, r, nil, http.StatusForbidden, "Signed out",
				"You are not signed in to the console (any more); nothing was changed.", c.prefix+"/")
			return
		}
		if err := c.cookies.Load().CheckSessionCSRF(s.cookie, r.PostForm.Get("csrf")); err != nil {
			c.log.WarnContext(r.Context(), "form refused", slog.String("user", s.user), slog.String("path", r.URL.Path),
				slog.Any("error", err))
			c.message(w, r, s, http.StatusForbidden, "Form refused",
				"The form did not come from this console session (its security token is missing or is another session's); nothing was changed.", "")
			return
		}
		if admin && !s.admin {
			c.log.WarnContext(r.Context(), "action refused: not an admin", slog.String("user", s.user), slog.String("path", r.URL.Path))
			c.message(w, r, s, http.StatusForbidden, "Operators only",
				"Only the console's operators (console.admins) may do this; nothing was changed.", "")
			return
		}
		h(w, r, s)
	}
}

// localNext returns next when it is a path of the console, else the
// console's home: where a browser goes after signing in.
func (c *Console) localNext(next string) string {
	p, _, _ := strings.Cut(next, "?")
	if !strings.HasPrefix(next, c.prefix+"/") || strings.ContainsAny(next, "\\\r\n#") ||
		(path.Clean(p) != p && path.Clean(p)+"/" != p) {
		return c.prefix + "/"
	}
	return next
}

// home sends an admin to the agents and anyone else to their tasks.
func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) {
	to := c.prefix + "/tasks"
	if s.admin {
		to = c.prefix + "/agents"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// contentSecurityPolicy allows the console's own stylesheet and script
// and nothing inline, forms to this origin only, and no framing.
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'"

// withHeaders sets the security headers of every console response.
func withHeaders(secure bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		// Pages hold what only their user may see; the static files
		// set their own caching.
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
