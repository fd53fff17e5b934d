package authserver

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

// hashProbe counts the password hashes a Limiter runs, and the most that
// ran at once, through the limiter's OnHash hook.
type hashProbe struct {
	running, peak, total atomic.Int64
}

func (p *hashProbe) onHash() func() {
	p.total.Add(1)
	n := p.running.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	return func() { p.running.Add(-1) }
}

// usersWith returns the test users in a Directory that hashes under lim.
func usersWith(t *testing.T, lim *userauth.Limiter) *userauth.Directory {
	t.Helper()
	base, err := testUsers()
	if err != nil {
		t.Fatal(err)
	}
	var list []userauth.User
	for _, name := range []string{"alice", "bob"} {
		u, _ := base.Lookup(name)
		list = append(list, u)
	}
	d, err := userauth.NewDirectory(list, userauth.WithLimiter(lim))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// memorySampler records the process's peak heap in use and resident set
// size while it runs.
type memorySampler struct {
	baseHeap, baseRSS uint64
	peakHeap, peakRSS uint64
	stop              chan struct{}
	done              sync.WaitGroup
}

func startMemorySampler() *memorySampler {
	runtime.GC()
	m := &memorySampler{stop: make(chan struct{})}
	m.baseHeap, m.baseRSS = heapInUse(), residentSet()
	m.peakHeap, m.peakRSS = m.baseHeap, m.baseRSS
	m.done.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			m.peakHeap = max(m.peakHeap, heapInUse())
			m.peakRSS = max(m.peakRSS, residentSet())
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	})
	return m
}

// finish stops sampling and returns the peak growth of the heap in use
// and of the resident set (0 where /proc is not available), in bytes.
func (m *memorySampler) finish() (heap, rss uint64) {
	close(m.stop)
	m.done.Wait()
	return m.peakHeap - m.baseHeap, m.peakRSS - m.baseRSS
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// residentSet reads VmRSS from /proc/self/status; 0 if it cannot.
func residentSet() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

const mib = 1 << 20

// TestSignInHashingIsBounded: 200 sign-ins with unknown user names posted
// at once (throttling off, so every one reaches the password check) never
// run more password hashes at once than the limiter's default bound,
// twice GOMAXPROCS. Each attempt either had its password checked (401) or
// found no free slot within the wait (503 with Retry-After, on the login
// page); none gets 500. The test logs the process's peak heap and RSS
// growth, and fails if the heap grew beyond what the bound allows.
func TestSignInHashingIsBounded(t *testing.T) {
	const attempts = 200
	var probe hashProbe
	lim, err := userauth.NewLimiter(userauth.LimiterConfig{OnHash: probe.onHash})
	if err != nil {
		t.Fatal(err)
	}
	e := newCodeEnv(t, func(c *Config) {
		c.Users = usersWith(t, lim)
		c.MaxLoginFailures = -1
	})
	posts := e.prepareLogins(attempts, func(i int) string { return fmt.Sprintf("nobody-%d", i) }, "guess")
	mem := startMemorySampler()
	rs := postAll(t, posts)
	heap, rss := mem.finish()
	counts := statusCounts(rs)
	limit := lim.MaxConcurrent()
	t.Logf("%d parallel sign-ins of unknown users: status counts %v; %d passwords hashed, at most %d at once (limit %d = 2 × GOMAXPROCS %d); peak growth: heap in use %.1f MiB, RSS %.1f MiB",
		attempts, counts, probe.total.Load(), probe.peak.Load(), limit, runtime.GOMAXPROCS(0), float64(heap)/mib, float64(rss)/mib)

	if limit != 2*runtime.GOMAXPROCS(0) {
		t.Errorf("default limit %d, want 2 × GOMAXPROCS = %d", limit, 2*runtime.GOMAXPROCS(0))
	}
	if p := probe.peak.Load(); p < 1 || p > int64(limit) {
		t.Errorf("%d hashes ran at once; the limit is %d", p, limit)
	}
	if counts[http.StatusUnauthorized]+counts[http.StatusServiceUnavailable] != attempts {
		t.Errorf("status counts %v; want only 401 (checked) and 503 (busy)", counts)
	}
	if got := probe.total.Load(); got != int64(counts[http.StatusUnauthorized]) || got == 0 {
		t.Errorf("%d hashes for %d answers 401", got, counts[http.StatusUnauthorized])
	}
	for _, r := range rs {
		if r.status == http.StatusServiceUnavailable {
			checkBusyPage(t, r)
			break
		}
	}
	// Each running argon2id check holds 19 MiB; with the garbage collector's
	// default target the heap may reach about twice what is live.
	if bound := uint64(3*limit*19*mib + 64*mib); heap > bound {
		t.Errorf("heap in use grew by %.0f MiB; with %d hashes at once it should stay under %.0f MiB",
			float64(heap)/mib, limit, float64(bound)/mib)
	}
}

// checkBusyPage checks a 503 answer: Retry-After, and the login page with
// its request kept so the user can try again.
func checkBusyPage(t *testing.T, r *response) {
	t.Helper()
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("503 without a Retry-After in seconds: %q", r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.body, "The server is busy") {
		t.Errorf("503 page: %s %s", r.header.Get("Content-Type"), r.body)
	}
	if _, fields := r.form(t); fields.Get("request") == "" || fields.Get("csrf") == "" {
		t.Errorf("the busy page lost the request or the CSRF token: %v", fields)
	}
}

// TestSignInBusy: while the only hashing slot is taken, sign-ins are
// answered 503 at once (no wait configured) without checking the password
// and without counting against the sign-in throttle, however many there
// are; the attempt holding the slot then completes, and alice can still
// sign in.
func TestSignInBusy(t *testing.T) {
	started, unblock := make(chan struct{}), make(chan struct{})
	var holding atomic.Bool
	var probe hashProbe
	lim, err := userauth.NewLimiter(userauth.LimiterConfig{MaxConcurrent: 1, Wait: -1, OnHash: func() func() {
		done := probe.onHash()
		if holding.CompareAndSwap(false, true) {
			close(started)
			<-unblock
		}
		return done
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := newCodeEnv(t, func(c *Config) { c.Users = usersWith(t, lim) })
	holder := e.prepareLogins(1, func(int) string { return "alice" }, "wrong password")[0]
	var (
		held    *response
		heldErr error
		wg      sync.WaitGroup
	)
	release := sync.OnceFunc(func() { close(unblock) })
	defer wg.Wait()
	defer release()
	wg.Go(func() { held, heldErr = holder.b.post(holder.action, holder.fields) })
	<-started
	for i := range 2 * DefaultMaxLoginFailures {
		r := e.signIn(newBrowser(t), e.authParams(newVerifier(t)), "alice", "wrong password")
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("attempt %d while the slot is taken: %d %s", i+1, r.status, r.body)
		}
		checkBusyPage(t, r)
	}
	release()
	wg.Wait()
	if heldErr != nil || held.status != http.StatusUnauthorized {
		t.Fatalf("the attempt holding the slot: %v %v", held, heldErr)
	}
	if r := e.signIn(newBrowser(t), e.authParams(newVerifier(t)), "alice", alicePassword); r.status != http.StatusOK {
		t.Errorf("alice after the busy answers: %d %s", r.status, r.body)
	}
	if got := probe.total.Load(); got != 2 {
		t.Errorf("%d passwords hashed, want 2 (the held attempt and alice's)", got)
	}
}
