package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/runtime/store"
)

// The console keeps its state in Config.Store (or a store in memory of
// its own) under namespaces of its own, so that hosts sharing one store
// share it: a browser signed in through one host is signed in at every
// host, and a sign-in started at one may come back to another.
const (
	// nsKeys holds the key that seals the console's cookies, under
	// keySealing.
	nsKeys = "console.keys"
	// nsSessions holds the sessions: a storedSession under sessionKey,
	// expiring with the session.
	nsSessions = "console.sessions"
	// nsLogins holds the sign-ins in progress: a pendingLogin under the
	// hash of its state, expiring after loginTTL.
	nsLogins = "console.logins"
)

// keySealing is the record of nsKeys that holds the cookie-sealing key.
const keySealing = "session"

// sealingKeyLen is the length of the cookie-sealing key
// (userauth.SessionConfig.Key).
const sealingKeyLen = 32

// hashText is the base64url SHA-256 of s. The console keys its records by
// the hash of the secrets that name them (a session's ID, a sign-in's
// state), as the authorization server does, so that the keys a store
// shows in its logs and listings name nothing a browser could present.
func hashText(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sealingKey returns the key that seals the console's cookies, creating it
// in kv on first use. When several consoles sharing kv create it at once,
// the first write wins (IfAbsent) and every console uses that one.
func sealingKey(ctx context.Context, kv store.KV) ([]byte, error) {
	for range 3 {
		rec, err := kv.Get(ctx, nsKeys, keySealing)
		if err == nil {
			if len(rec.Value) != sealingKeyLen {
				return nil, fmt.Errorf("console: the cookie-sealing key in %s is corrupt (%d bytes)", nsKeys, len(rec.Value))
			}
			return rec.Value, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("console: read the cookie-sealing key: %w", err)
		}
		key := make([]byte, sealingKeyLen)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("console: cookie-sealing key: %w", err)
		}
		_, err = kv.Put(ctx, nsKeys, keySealing, key, store.PutOptions{Condition: store.IfAbsent})
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("console: save the cookie-sealing key: %w", err)
		}
	}
	return nil, errors.New("console: the cookie-sealing key changed while it was created")
}

// sealer returns the cookies' sealer, reading its key from the store on
// first use: a console that starts while its store is unavailable starts,
// and answers 503 until the store is back.
func (c *Console) sealer(ctx context.Context) (*userauth.Sessions, error) {
	if s := c.cookies.Load(); s != nil {
		return s, nil
	}
	key, err := sealingKey(ctx, c.kv)
	if err != nil {
		return nil, err
	}
	cfg := c.cookieConfig
	cfg.Key = key
	s, err := userauth.NewSessions(cfg)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if !c.cookies.CompareAndSwap(nil, s) {
		return c.cookies.Load(), nil
	}
	return s, nil
}

// session is a browser signed in to the console. It is kept in the
// console's store; the browser's cookie (userauth.Sessions, HttpOnly,
// SameSite=Lax, Secure with https) only names it, sealed. Signing out
// deletes it there, so a copy of the cookie is worth nothing afterwards,
// at any host.
type session struct {
	// cookie is the sealed cookie's session: its ID keys the store and
	// binds the CSRF token of the session's forms.
	cookie userauth.Session
	user   string
	// name is the user's name for people (the userinfo name), or user.
	name string
	// admin is whether user is one of the console's admins now
	// (Console.isAdmin, read on every request, so that a change of
	// console.admins applies to sessions started before it).
	admin    bool
	signedIn time.Time
	expires  time.Time
}

// storedSession is a session as the store keeps it, in JSON.
type storedSession struct {
	User string `json:"user"`
	Name string `json:"name"`
	// Admin is whether the user was an admin when they signed in (for
	// the record: Console.session decides anew).
	Admin    bool      `json:"admin"`
	SignedIn time.Time `json:"signed_in"`
	Expires  time.Time `json:"expires"`
}

// maxUserSessions bounds the sessions one user keeps; beyond it their
// oldest ends. Only a user who signed in at the authorization server
// makes a session, so with the store's TTL this bounds them all.
const maxUserSessions = 100

// sessionKey is the key of the session of user whose ID is id: the hash
// of the user, which groups a user's sessions for maxUserSessions, and
// the hash of the ID.
func sessionKey(user, id string) string { return hashText(user) + "/" + hashText(id) }

// sessionStore holds the console's sessions in a store.
type sessionStore struct {
	kv  store.KV
	now func() time.Time
}

func newSessionStore(kv store.KV, now func() time.Time) *sessionStore {
	return &sessionStore{kv: kv, now: now}
}

// put keeps s until it expires (the record's TTL).
func (st *sessionStore) put(ctx context.Context, s *session) error {
	ttl := s.expires.Sub(st.now())
	if ttl <= 0 {
		return errors.New("console: save the session: it has expired")
	}
	if err := st.makeRoom(ctx, s.user); err != nil {
		return err
	}
	v, err := json.Marshal(storedSession{User: s.user, Name: s.name, Admin: s.admin, SignedIn: s.signedIn, Expires: s.expires})
	if err != nil {
		return fmt.Errorf("console: save the session: %w", err)
	}
	// The ID is fresh: IfAbsent only guards against a collision.
	if _, err := st.kv.Put(ctx, nsSessions, sessionKey(s.user, s.cookie.ID), v,
		store.PutOptions{Condition: store.IfAbsent, TTL: ttl}); err != nil {
		return fmt.Errorf("console: save the session: %w", err)
	}
	return nil
}

// makeRoom ends user's oldest sessions so that one more fits within
// maxUserSessions.
func (st *sessionStore) makeRoom(ctx context.Context, user string) error {
	prefix := hashText(user) + "/"
	n, err := st.kv.Count(ctx, nsSessions, prefix)
	if err != nil {
		return fmt.Errorf("console: count the sessions: %w", err)
	}
	if n < maxUserSessions {
		return nil
	}
	recs, err := st.kv.List(ctx, nsSessions, prefix, "", min(n, store.MaxLimit))
	if err != nil {
		return fmt.Errorf("console: list the sessions: %w", err)
	}
	signedIn := func(r store.Record) time.Time {
		var v storedSession
		_ = json.Unmarshal(r.Value, &v) // a corrupt record sorts first
		return v.SignedIn
	}
	slices.SortFunc(recs, func(a, b store.Record) int { return signedIn(a).Compare(signedIn(b)) })
	for _, r := range recs[:max(0, len(recs)-maxUserSessions+1)] {
		err := st.kv.Delete(ctx, nsSessions, r.Key, store.IfVersion(r.Version))
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("console: end an old session: %w", err)
		}
	}
	return nil
}

// get returns the live session the cookie session cs names, or nil; an
// error only when the store fails.
func (st *sessionStore) get(ctx context.Context, cs userauth.Session) (*session, error) {
	rec, err := st.kv.Get(ctx, nsSessions, sessionKey(cs.User, cs.ID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console: read the session: %w", err)
	}
	var v storedSession
	if err := json.Unmarshal(rec.Value, &v); err != nil || v.User != cs.User || !st.now().Before(v.Expires) {
		return nil, nil
	}
	return &session{cookie: cs, user: v.User, name: v.Name, admin: v.Admin, signedIn: v.SignedIn, expires: v.Expires}, nil
}

// remove ends s at every console that shares the store.
func (st *sessionStore) remove(ctx context.Context, s *session) error {
	err := st.kv.Delete(ctx, nsSessions, sessionKey(s.user, s.cookie.ID), store.Always)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("console: end the session: %w", err)
	}
	return nil
}

// session returns the console session of the browser that sent r, or nil
// when it has none. A session whose user the backend no longer admits
// (removed, or their credentials revoked since they signed in) ends here.
// The error is a failure to tell (the store, or the backend's check of
// the user, is unavailable): the browser is neither signed in nor out.
func (c *Console) session(r *http.Request) (*session, error) {
	ctx := r.Context()
	cookies, err := c.sealer(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := cookies.Get(r)
	if err != nil {
		return nil, nil
	}
	s, err := c.sessions.get(ctx, cs)
	if err != nil || s == nil {
		return nil, err
	}
	s.admin = c.isAdmin(s.user)
	ok, err := c.b.UserActive(ctx, s.user, s.signedIn)
	if err != nil {
		return nil, fmt.Errorf("console: check user %s: %w", s.user, err)
	}
	if !ok {
		c.log.InfoContext(ctx, "session ended: the user's credentials were revoked", slog.String("user", s.user))
		if err := c.sessions.remove(ctx, s); err != nil {
			// The user check refuses the session at every request.
			c.log.WarnContext(ctx, "revoked session not deleted", slog.String("user", s.user), slog.Any("error", err))
		}
		return nil, nil
	}
	return s, nil
}

// pendingLogin is a sign-in sent to the authorization server and not
// back yet, as the store keeps it, in JSON.
type pendingLogin struct {
	// Verifier is the PKCE code verifier.
	Verifier string `json:"verifier"`
	// Binding is the CSRF token of the browser that started it
	// (userauth.Sessions.CSRFToken), which the browser coming back must
	// match: a sign-in started in one browser cannot end in another.
	Binding string `json:"binding"`
	// Next is where the browser goes once signed in.
	Next    string    `json:"next"`
	Created time.Time `json:"created"`
}

// Limits of the sign-ins in progress.
const (
	loginTTL = 10 * time.Minute
	// maxLogins bounds the sign-ins in progress of every console sharing
	// the store; beyond it a new one ends a random other (anyone may
	// start a sign-in).
	maxLogins = 10000
	// maxEvictions bounds the sign-ins one new sign-in ends.
	maxEvictions = 8
	// maxStateLen bounds a state the console takes: its own are 43
	// characters.
	maxStateLen = 256
)

// loginStore holds the sign-ins in progress in a store, by their state.
type loginStore struct {
	kv  store.KV
	now func() time.Time
	max int
}

func newLoginStore(kv store.KV, now func() time.Time) *loginStore {
	return &loginStore{kv: kv, now: now, max: maxLogins}
}

// put keeps p under state for loginTTL.
func (ls *loginStore) put(ctx context.Context, state string, p pendingLogin) error {
	if err := ls.makeRoom(ctx); err != nil {
		return err
	}
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("console: save the sign-in: %w", err)
	}
	if _, err := ls.kv.Put(ctx, nsLogins, hashText(state), v, store.PutOptions{Condition: store.IfAbsent, TTL: loginTTL}); err != nil {
		return fmt.Errorf("console: save the sign-in: %w", err)
	}
	return nil
}

// makeRoom ends random sign-ins in progress so that one more fits within
// max. Their keys are hashes: the first record after a random key is a
// random one.
func (ls *loginStore) makeRoom(ctx context.Context) error {
	n, err := ls.kv.Count(ctx, nsLogins, "")
	if err != nil {
		return fmt.Errorf("console: count the sign-ins: %w", err)
	}
	for range min(n-ls.max+1, maxEvictions) {
		recs, err := ls.kv.List(ctx, nsLogins, "", hashText(randomText()), 1)
		if err == nil && len(recs) == 0 {
			recs, err = ls.kv.List(ctx, nsLogins, "", "", 1)
		}
		if err != nil {
			return fmt.Errorf("console: list the sign-ins: %w", err)
		}
		if len(recs) == 0 {
			return nil
		}
		err = ls.kv.Delete(ctx, nsLogins, recs[0].Key, store.IfVersion(recs[0].Version))
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("console: end a sign-in: %w", err)
		}
	}
	return nil
}

// take removes and returns the sign-in state names, if it is still
// recent: each is used once, at whichever console it comes back to. The
// delete is conditional on the version read, so of two consoles taking
// one state at once only one gets it. The error is the store's: the
// sign-in is then not taken.
func (ls *loginStore) take(ctx context.Context, state string) (pendingLogin, bool, error) {
	if state == "" || len(state) > maxStateLen {
		return pendingLogin{}, false, nil
	}
	key := hashText(state)
	rec, err := ls.kv.Get(ctx, nsLogins, key)
	if errors.Is(err, store.ErrNotFound) {
		return pendingLogin{}, false, nil
	}
	if err != nil {
		return pendingLogin{}, false, fmt.Errorf("console: read the sign-in: %w", err)
	}
	if err := ls.kv.Delete(ctx, nsLogins, key, store.IfVersion(rec.Version)); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			return pendingLogin{}, false, nil // another console took it
		}
		return pendingLogin{}, false, fmt.Errorf("console: take the sign-in: %w", err)
	}
	var p pendingLogin
	if err := json.Unmarshal(rec.Value, &p); err != nil || ls.now().Sub(p.Created) > loginTTL {
		return pendingLogin{}, false, nil
	}
	return p, true, nil
}

// unavailable answers a request the console cannot serve because its
// store (or the backend's check of the user) failed: 503 with a page
// that says so, then what (or "Try again in a moment."), with a link to
// link when set. The error is logged, never shown.
func (c *Console) unavailable(w http.ResponseWriter, r *http.Request, err error, what, link string) {
	c.log.ErrorContext(r.Context(), "console unavailable", slog.String("path", r.URL.Path), slog.Any("error", err))
	if what == "" {
		what = "Try again in a moment."
	}
	w.Header().Set("Retry-After", "5")
	c.message(w, r, nil, http.StatusServiceUnavailable, "Console unavailable",
		"The console cannot reach the host's storage just now. "+what, link)
}

// headerWriter is a ResponseWriter that keeps only headers: the callback
// has the session cookie set here, and copies it to the response once
// the session is saved.
type headerWriter http.Header

func (h headerWriter) Header() http.Header       { return http.Header(h) }
func (headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (headerWriter) WriteHeader(int)             {}
