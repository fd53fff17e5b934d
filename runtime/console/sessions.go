package console

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

// session is a browser signed in to the console. It is kept here, in
// memory; the browser's cookie (userauth.Sessions, HttpOnly, SameSite=Lax,
// Secure with https) only names it, sealed. Signing out ends it here, so a
// copy of the cookie is worth nothing afterwards.
type session struct {
	// cookie is the sealed cookie's session: its ID keys the store and
	// binds the CSRF token of the session's forms.
	cookie userauth.Session
	user   string
	// name is the user's name for people (the userinfo name), or user.
	name     string
	admin    bool
	signedIn time.Time
	expires  time.Time
}

// maxSessions bounds the sessions kept; beyond it the oldest ends.
const maxSessions = 10000

// sessionStore holds the console's sessions by ID.
type sessionStore struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessionStore(now func() time.Time) *sessionStore {
	return &sessionStore{now: now, m: map[string]*session{}}
}

func (st *sessionStore) put(s *session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.m) >= maxSessions {
		now := st.now()
		var oldest *session
		for id, o := range st.m {
			if !now.Before(o.expires) {
				delete(st.m, id)
				continue
			}
			if oldest == nil || o.signedIn.Before(oldest.signedIn) {
				oldest = o
			}
		}
		if len(st.m) >= maxSessions && oldest != nil {
			delete(st.m, oldest.cookie.ID)
		}
	}
	st.m[s.cookie.ID] = s
}

// get returns the live session the cookie session cs names.
func (st *sessionStore) get(cs userauth.Session) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[cs.ID]
	switch {
	case !ok:
		return nil
	case s.user != cs.User || !st.now().Before(s.expires):
		delete(st.m, cs.ID)
		return nil
	}
	return s
}

func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

// session returns the console session of the browser that sent r, or nil.
// A session whose user the backend no longer admits (removed, or their
// credentials revoked since they signed in) ends here.
func (c *Console) session(r *http.Request) *session {
	cs, err := c.cookies.Get(r)
	if err != nil {
		return nil
	}
	s := c.sessions.get(cs)
	if s == nil {
		return nil
	}
	ok, err := c.b.UserActive(r.Context(), s.user, s.signedIn)
	if err != nil {
		c.log.ErrorContext(r.Context(), "user check failed", slog.String("user", s.user), slog.Any("error", err))
		return nil
	}
	if !ok {
		c.log.InfoContext(r.Context(), "session ended: the user's credentials were revoked", slog.String("user", s.user))
		c.sessions.remove(s.cookie.ID)
		return nil
	}
	return s
}

// loginStore holds the sign-ins in progress, by their state.
type loginStore struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]pendingLogin
}

// pendingLogin is a sign-in sent to the authorization server and not
// back yet.
type pendingLogin struct {
	// verifier is the PKCE code verifier.
	verifier string
	// binding is the CSRF token of the browser that started it
	// (userauth.Sessions.CSRFToken), which the browser coming back must
	// match: a sign-in started in one browser cannot end in another.
	binding string
	// next is where the browser goes once signed in.
	next    string
	created time.Time
}

// Limits of the sign-ins in progress.
const (
	loginTTL  = 10 * time.Minute
	maxLogins = 10000
)

func newLoginStore(now func() time.Time) *loginStore {
	return &loginStore{now: now, m: map[string]pendingLogin{}}
}

func (ls *loginStore) put(state string, p pendingLogin) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.m) >= maxLogins {
		now := ls.now()
		oldest, at := "", time.Time{}
		for k, o := range ls.m {
			if now.Sub(o.created) > loginTTL {
				delete(ls.m, k)
				continue
			}
			if oldest == "" || o.created.Before(at) {
				oldest, at = k, o.created
			}
		}
		if len(ls.m) >= maxLogins {
			delete(ls.m, oldest)
		}
	}
	ls.m[state] = p
}

// take removes and returns the sign-in state names, if it is still
// recent: each is used once.
func (ls *loginStore) take(state string) (pendingLogin, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	p, ok := ls.m[state]
	if !ok {
		return pendingLogin{}, false
	}
	delete(ls.m, state)
	if ls.now().Sub(p.created) > loginTTL {
		return pendingLogin{}, false
	}
	return p, true
}
