package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// failingKV is a store whose every operation fails, as a database that
// does not answer, while fail is set.
type failingKV struct {
	store.KV
	fail atomic.Bool
}

// errDown is what failingKV returns: the details of a store's error,
// which no page may show.
var errDown = fmt.Errorf("pgstore: get: %w: dial tcp 10.0.0.5:5432: connect: connection refused", store.ErrUnavailable)

func (f *failingKV) Get(ctx context.Context, ns, key string) (store.Record, error) {
	if f.fail.Load() {
		return store.Record{}, errDown
	}
	return f.KV.Get(ctx, ns, key)
}

func (f *failingKV) Put(ctx context.Context, ns, key string, value []byte, opts store.PutOptions) (store.Record, error) {
	if f.fail.Load() {
		return store.Record{}, errDown
	}
	return f.KV.Put(ctx, ns, key, value, opts)
}

func (f *failingKV) Delete(ctx context.Context, ns, key string, cond store.Condition) error {
	if f.fail.Load() {
		return errDown
	}
	return f.KV.Delete(ctx, ns, key, cond)
}

func (f *failingKV) List(ctx context.Context, ns, prefix, after string, limit int) ([]store.Record, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.KV.List(ctx, ns, prefix, after, limit)
}

func (f *failingKV) Count(ctx context.Context, ns, prefix string) (int, error) {
	if f.fail.Load() {
		return 0, errDown
	}
	return f.KV.Count(ctx, ns, prefix)
}

// noFollow makes b stop at redirects; it returns a func that undoes it.
func (b *browser) noFollow() func() {
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return func() { b.c.CheckRedirect = nil }
}

// startSignIn starts a sign-in in b at the console in use and returns the
// authorization server's redirect back to the callback, not followed.
func (b *browser) startSignIn(path string) *url.URL {
	b.e.t.Helper()
	b.c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	defer func() { b.c.CheckRedirect = nil }()
	resp, err := b.c.Get(b.e.srv.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasSuffix(loc.Path, "/callback") {
		b.e.t.Fatalf("no redirect to the callback: %d %v", resp.StatusCode, loc)
	}
	return loc
}

// tasksStatus is the status of the tasks page for b, not following a
// redirect to sign in.
func (b *browser) tasksStatus() int {
	b.e.t.Helper()
	defer b.noFollow()()
	status, _, _ := b.get(Path + "tasks")
	return status
}

// TestSessionsAcrossConsoles: two consoles on one store are one console.
// A browser signed in through A is signed in at B; signing out at B ends
// the session at A too, and the old cookie, replayed, is worth nothing
// at either.
func TestSessionsAcrossConsoles(t *testing.T) {
	e := newCluster(t, testBackend(), memstore.New(nil), nil, 2)
	e.use(0)
	alice := e.signIn("alice")
	e.use(1)
	if status, body, _ := alice.get(Path + "agents"); status != http.StatusOK || !strings.Contains(body, "Alice Example") {
		t.Fatalf("alice's session at console B: %d\n%s", status, body)
	}
	u, _ := url.Parse(e.srv.URL)
	var cookie *http.Cookie
	for _, c := range alice.c.Jar.Cookies(u) {
		if c.Name == CookieName {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	// Sign out at B.
	if status, body := alice.post(Path+"logout", url.Values{"csrf": {alice.csrf()}}); status != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Fatalf("logout at B: %d\n%s", status, body)
	}
	for i := range 2 {
		e.use(i)
		if status := alice.tasksStatus(); status != http.StatusSeeOther {
			t.Errorf("alice at console %d after signing out at B: %d", i, status)
		}
		// A copy of the cookie taken before the sign-out.
		replay := e.browser()
		replay.c.Jar.SetCookies(u, []*http.Cookie{cookie})
		if status := replay.tasksStatus(); status != http.StatusSeeOther {
			t.Errorf("the old cookie at console %d: %d", i, status)
		}
	}
}

// TestSignInAcrossConsoles: a sign-in started at A completes at B's
// callback; its state, replayed at A (or at B) afterwards, is refused.
func TestSignInAcrossConsoles(t *testing.T) {
	e := newCluster(t, testBackend(), memstore.New(nil), nil, 2)
	e.as.signInAs("bob")
	b := e.browser()
	e.use(0)
	cb := b.startSignIn(Path + "approvals")
	e.use(1)
	if status, body, _ := b.get(cb.RequestURI()); status != http.StatusOK || !strings.Contains(body, "<h1>Approvals</h1>") {
		t.Fatalf("callback at B of a sign-in started at A: %d\n%s", status, body)
	}
	for i := range 2 {
		e.use(i)
		// The same browser (its CSRF cookie matches): only the state's
		// single use refuses it.
		if status, body, _ := b.get(cb.RequestURI()); status != http.StatusBadRequest || !strings.Contains(body, "not one the console is waiting for") {
			t.Errorf("the state replayed at console %d: %d\n%s", i, status, body)
		}
	}
	e.use(0)
	if status := b.tasksStatus(); status != http.StatusOK {
		t.Errorf("bob at A: %d", status)
	}
}

// TestRestartKeepsSessions: a console that restarts on the same store
// keeps its sessions and its sign-ins in progress; one that keeps them in
// memory (no Store) signs everyone out.
func TestRestartKeepsSessions(t *testing.T) {
	e := newCluster(t, testBackend(), memstore.New(nil), nil, 1)
	alice := e.signIn("alice")
	e.as.signInAs("bob")
	bob := e.browser()
	cb := bob.startSignIn(Path + "tasks")
	e.restart(0)
	if status := alice.tasksStatus(); status != http.StatusOK {
		t.Errorf("alice after a restart: %d", status)
	}
	if status, _, _ := bob.get(cb.RequestURI()); status != http.StatusOK {
		t.Errorf("bob's sign-in, completed after a restart: %d", status)
	}

	mem := newEnv(t, testBackend())
	alice = mem.signIn("alice")
	mem.restart(0)
	if status := alice.tasksStatus(); status != http.StatusSeeOther {
		t.Errorf("alice after a restart of a console without a store: %d", status)
	}
}

// TestExpiry: a session ends at its expiry, and its record is gone from
// the store; a sign-in in progress for longer than loginTTL cannot
// complete, at any console.
func TestExpiry(t *testing.T) {
	clock := newTestClock()
	kv := memstore.New(clock.now)
	e := newCluster(t, testBackend(), kv, clock.now, 2)
	alice := e.signIn("alice")
	ctx := context.Background()
	if n, err := kv.Count(ctx, nsSessions, ""); err != nil || n != 1 {
		t.Fatalf("sessions kept: %d, %v", n, err)
	}
	clock.advance(DefaultSessionTTL - time.Minute)
	e.use(1)
	if status := alice.tasksStatus(); status != http.StatusOK {
		t.Errorf("alice a minute before her session expires: %d", status)
	}
	clock.advance(time.Minute)
	if status := alice.tasksStatus(); status != http.StatusSeeOther {
		t.Errorf("alice when her session expires: %d", status)
	}
	if n, err := kv.Count(ctx, nsSessions, ""); err != nil || n != 0 {
		t.Errorf("expired sessions kept: %d, %v", n, err)
	}

	e.as.signInAs("bob")
	bob := e.browser()
	e.use(0)
	cb := bob.startSignIn(Path + "tasks")
	clock.advance(loginTTL + time.Second)
	e.use(1)
	if status, body, _ := bob.get(cb.RequestURI()); status != http.StatusBadRequest || !strings.Contains(body, "took too long") {
		t.Errorf("a sign-in completed after loginTTL: %d\n%s", status, body)
	}
	if status := bob.tasksStatus(); status != http.StatusSeeOther {
		t.Errorf("bob after his sign-in expired: %d", status)
	}
}

// TestSessionRecordChecked: a session's record is only good for its user
// and until its own expiry, whatever the store's TTL says.
func TestSessionRecordChecked(t *testing.T) {
	clock := newTestClock()
	kv := memstore.New(clock.now)
	st := newSessionStore(kv, clock.now)
	ctx := context.Background()
	now := clock.now().Truncate(time.Second)
	cs := userauth.Session{ID: "id-1", User: "alice", AuthTime: now, Expires: now.Add(time.Hour)}
	if err := st.put(ctx, &session{cookie: cs, user: "alice", name: "Alice", signedIn: now, expires: cs.Expires}); err != nil {
		t.Fatal(err)
	}
	if s, err := st.get(ctx, cs); err != nil || s == nil || s.name != "Alice" {
		t.Fatalf("get: %+v, %v", s, err)
	}
	other := cs
	other.User = "bob"
	if s, err := st.get(ctx, other); err != nil || s != nil {
		t.Errorf("alice's session ID with bob as the user: %+v, %v", s, err)
	}
	// A record that outlives its session (a store's clock behind ours).
	if _, err := kv.Put(ctx, nsSessions, sessionKey("alice", "id-1"),
		[]byte(mustJSON(t, storedSession{User: "alice", SignedIn: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)})), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if s, err := st.get(ctx, cs); err != nil || s != nil {
		t.Errorf("an expired session's record: %+v, %v", s, err)
	}
	// A record of another user under alice's key.
	if _, err := kv.Put(ctx, nsSessions, sessionKey("alice", "id-1"),
		[]byte(mustJSON(t, storedSession{User: "bob", SignedIn: now, Expires: now.Add(time.Hour)})), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if s, err := st.get(ctx, cs); err != nil || s != nil {
		t.Errorf("bob's record under alice's key: %+v, %v", s, err)
	}
	// A corrupt record is no session.
	if _, err := kv.Put(ctx, nsSessions, sessionKey("alice", "id-1"), []byte("{"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if s, err := st.get(ctx, cs); err != nil || s != nil {
		t.Errorf("a corrupt record: %+v, %v", s, err)
	}
}

// TestLoginTakenOnce: of many takes of one state, at once, through two
// consoles' login stores on one store, exactly one succeeds.
func TestLoginTakenOnce(t *testing.T) {
	kv := memstore.New(nil)
	stores := []*loginStore{newLoginStore(kv, time.Now), newLoginStore(kv, time.Now)}
	ctx := context.Background()
	for round := range 50 {
		state := fmt.Sprintf("state-%d", round)
		if err := stores[0].put(ctx, state, pendingLogin{Verifier: "v", Next: "/console/", Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 16 {
			wg.Go(func() {
				<-start
				p, ok, err := stores[i%2].take(ctx, state)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
					if p.Verifier != "v" {
						t.Errorf("taken: %+v", p)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d takes succeeded", round, n)
		}
	}
}

// TestLoginRace: a state taken between another taker's read and delete is
// not taken twice: the delete is conditional on the version read.
func TestLoginRace(t *testing.T) {
	kv := &raceKV{KV: memstore.New(nil)}
	ls := newLoginStore(kv, time.Now)
	ctx := context.Background()
	if err := ls.put(ctx, "s", pendingLogin{Verifier: "v", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Between this take's read and its delete, another host takes the
	// state and a new sign-in happens to write the key again.
	kv.between = func() {
		if _, ok, err := newLoginStore(kv.KV, time.Now).take(ctx, "s"); !ok || err != nil {
			t.Errorf("the other host's take: %v, %v", ok, err)
		}
		if err := newLoginStore(kv.KV, time.Now).put(ctx, "s", pendingLogin{Verifier: "w", Created: time.Now()}); err != nil {
			t.Error(err)
		}
	}
	if p, ok, err := ls.take(ctx, "s"); ok || err != nil {
		t.Errorf("a take that lost the race: %+v, %v, %v", p, ok, err)
	}
}

// raceKV runs between after the first Get.
type raceKV struct {
	store.KV
	between func()
	once    sync.Once
}

func (r *raceKV) Get(ctx context.Context, ns, key string) (store.Record, error) {
	rec, err := r.KV.Get(ctx, ns, key)
	r.once.Do(r.between)
	return rec, err
}

// TestSealingKeyShared: consoles starting at once on one store end with
// one key; a corrupt key is an error, not a new key.
func TestSealingKeyShared(t *testing.T) {
	kv := memstore.New(nil)
	ctx := context.Background()
	keys := make([][]byte, 16)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range keys {
		wg.Go(func() {
			<-start
			k, err := sealingKey(ctx, kv)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	close(start)
	wg.Wait()
	for i, k := range keys {
		if len(k) != sealingKeyLen || string(k) != string(keys[0]) {
			t.Fatalf("key %d differs: %x, %x", i, k, keys[0])
		}
	}
	if _, err := kv.Put(ctx, nsKeys, keySealing, []byte("short"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sealingKey(ctx, kv); err == nil || !strings.HasPrefix(err.Error(), "console: ") {
		t.Errorf("a corrupt key: %v", err)
	}
}

// TestStoreUnavailable: while the store fails, the console answers 503
// with a page that says to try again and shows nothing of the error; it
// loses nothing: the session, and a sign-in in progress, work once the
// store is back; a sign-out that could not be done leaves the session as
// it was, and says so.
func TestStoreUnavailable(t *testing.T) {
	kv := &failingKV{KV: memstore.New(nil)}
	e := newCluster(t, testBackend(), kv, nil, 1)
	alice := e.signIn("alice")
	csrf := alice.csrf()
	e.as.signInAs("bob")
	bob := e.browser()
	cb := bob.startSignIn(Path + "tasks")

	unavailable := func(what string, status int, body string, h http.Header) {
		t.Helper()
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "in a moment") || h.Get("Retry-After") == "" {
			t.Errorf("%s: %d, Retry-After %q\n%s", what, status, h.Get("Retry-After"), body)
		}
		for _, leak := range []string{"10.0.0.5", "connection refused", "pgstore", "store:"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the page shows %q", what, leak)
			}
		}
	}
	post := func(b *browser, path string, form url.Values) (int, string, http.Header) {
		t.Helper()
		resp, err := b.c.PostForm(e.srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}

	kv.fail.Store(true)
	restore := alice.noFollow()
	for _, p := range []string{"", "tasks", "agents", "tasks/task-alice/events", "login"} {
		status, body, h := alice.get(Path + p)
		unavailable("GET "+p, status, body, h)
	}
	status, body, h := post(alice, Path+"logout", url.Values{"csrf": {csrf}})
	unavailable("logout", status, body, h)
	for _, c := range h.Values("Set-Cookie") {
		if strings.HasPrefix(c, CookieName+"=") {
			t.Errorf("a sign-out that was not done deleted the cookie: %s", c)
		}
	}
	restore()
	status, body, h = bob.get(cb.RequestURI())
	unavailable("callback", status, body, h)
	// A browser without a session cookie has no session whatever the
	// store holds; its sign-in cannot start.
	anon := e.browser()
	defer anon.noFollow()()
	if status, _, h := anon.get(Path + "tasks"); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login") {
		t.Errorf("a browser without a session cookie: %d to %q", status, h.Get("Location"))
	}
	status, body, h = anon.get(Path + "login")
	unavailable("a browser without a session, signing in", status, body, h)
	// A console that starts while the store is down starts, and says so
	// on every page.
	e.restart(0)
	status, body, h = anon.get(Path + "tasks")
	unavailable("a console started while the store is down", status, body, h)

	kv.fail.Store(false)
	if status := alice.tasksStatus(); status != http.StatusOK {
		t.Errorf("alice once the store is back: %d", status)
	}
	if status, _, _ := bob.get(cb.RequestURI()); status != http.StatusOK {
		t.Errorf("bob's sign-in once the store is back: %d", status)
	}
	if status := bob.tasksStatus(); status != http.StatusOK {
		t.Errorf("bob once the store is back: %d", status)
	}
}

// TestUserCheckUnavailable: a backend that cannot say whether the user
// may still sign in gets a 503, not a sign-in loop.
func TestUserCheckUnavailable(t *testing.T) {
	be := testBackend()
	e := newEnv(t, be)
	alice := e.signIn("alice")
	be.mu.Lock()
	be.activeErr = errDown
	be.mu.Unlock()
	defer alice.noFollow()()
	status, body, _ := alice.get(Path + "tasks")
	if status != http.StatusServiceUnavailable || strings.Contains(body, "10.0.0.5") {
		t.Errorf("tasks while the user check fails: %d\n%s", status, body)
	}
}

// TestSessionBound: a user keeps at most maxUserSessions sessions; a new
// one ends their oldest, and nobody else's.
func TestSessionBound(t *testing.T) {
	clock := newTestClock()
	kv := memstore.New(clock.now)
	st := newSessionStore(kv, clock.now)
	ctx := context.Background()
	put := func(user string, i int) userauth.Session {
		t.Helper()
		now := clock.now().Truncate(time.Second)
		cs := userauth.Session{ID: fmt.Sprintf("%s-%d", user, i), User: user, AuthTime: now, Expires: now.Add(time.Hour)}
		if err := st.put(ctx, &session{cookie: cs, user: user, name: user, signedIn: now, expires: cs.Expires}); err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Second)
		return cs
	}
	bob := put("bob", 0)
	var alice []userauth.Session
	for i := range maxUserSessions + 3 {
		alice = append(alice, put("alice", i))
	}
	if n, err := kv.Count(ctx, nsSessions, ""); err != nil || n != maxUserSessions+1 {
		t.Errorf("sessions kept: %d, %v", n, err)
	}
	for i, cs := range alice {
		s, err := st.get(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if (s != nil) != (i >= 3) {
			t.Errorf("alice's session %d kept: %v", i, s != nil)
		}
	}
	if s, err := st.get(ctx, bob); s == nil || err != nil {
		t.Errorf("bob's session: %v, %v", s, err)
	}
}

// TestLoginBound: the sign-ins in progress are at most max; beyond it a
// new one ends a random other.
func TestLoginBound(t *testing.T) {
	kv := memstore.New(nil)
	ls := newLoginStore(kv, time.Now)
	ls.max = 20
	ctx := context.Background()
	for i := range 50 {
		if err := ls.put(ctx, fmt.Sprint("state-", i), pendingLogin{Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := kv.Count(ctx, nsLogins, ""); err != nil || n != 20 {
		t.Errorf("sign-ins kept: %d, %v", n, err)
	}
	if _, ok, err := ls.take(ctx, "state-49"); !ok || err != nil {
		t.Errorf("the newest sign-in: %v, %v", ok, err)
	}
}

// TestNamespaces: the console's namespaces are valid store names of its
// own ("console." like "as." and "host.").
func TestNamespaces(t *testing.T) {
	for _, ns := range []string{nsKeys, nsSessions, nsLogins} {
		if err := store.ValidateName("namespace", ns); err != nil || !strings.HasPrefix(ns, "console.") {
			t.Errorf("namespace %q: %v", ns, err)
		}
	}
	if err := store.ValidateKey(sessionKey(strings.Repeat("u", 255), "id")); err != nil {
		t.Error(err)
	}
}
