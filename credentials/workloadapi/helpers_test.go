package workloadapi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// waitTimeout guards every wait for an asynchronous event; tests never
// depend on it for correctness.
const waitTimeout = 15 * time.Second

const testTTL = time.Hour

// eventLog records the server's IssueEvents.
type eventLog struct {
	mu     sync.Mutex
	events []IssueEvent
}

func (l *eventLog) record(_ context.Context, ev IssueEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) count(kind SVIDKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func (l *eventLog) last(kind SVIDKind) (IssueEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.events) - 1; i >= 0; i-- {
		if l.events[i].Kind == kind {
			return l.events[i], true
		}
	}
	return IssueEvent{}, false
}

// refuseLog records the server's RefuseEvents.
type refuseLog struct {
	mu     sync.Mutex
	events []RefuseEvent
}

func (l *refuseLog) record(_ context.Context, ev RefuseEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

// of returns the events about the workload id.
func (l *refuseLog) of(id spiffeid.ID) []RefuseEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []RefuseEvent
	for _, ev := range l.events {
		if ev.Workload == id {
			out = append(out, ev)
		}
	}
	return out
}

// testEnv is a server with a fake authority and a fake clock.
type testEnv struct {
	clock    *fakeClock
	auth     *fakeAuthority
	srv      *Server
	dir      string
	events   *eventLog
	refusals *refuseLog
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	clock := newFakeClock()
	auth := newFakeAuthority(t, "example.org", clock.Now, testTTL)
	return newTestEnvWith(t, clock, auth)
}

func newTestEnvWith(t *testing.T, clock *fakeClock, auth Authority) *testEnv {
	t.Helper()
	events, refusals := &eventLog{}, &refuseLog{}
	srv, err := New(Config{Authority: auth, Now: clock.Now, OnIssue: events.record, OnRefuse: refusals.record, TickInterval: time.Hour})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env := &testEnv{clock: clock, srv: srv, dir: privateDir(t), events: events, refusals: refusals}
	if fa, ok := auth.(*fakeAuthority); ok {
		env.auth = fa
	}
	return env
}

// add registers a workload named name with its socket in the test
// directory and returns its ID and socket path.
func (e *testEnv) add(t *testing.T, name string, modify func(*Workload)) (spiffeid.ID, string) {
	t.Helper()
	td := e.srv.auth.TrustDomain()
	w := Workload{
		ID:         spiffeid.RequireFromPath(td, "/agent/"+name),
		SocketPath: filepath.Join(e.dir, name+".sock"),
	}
	if modify != nil {
		modify(&w)
	}
	if err := e.srv.AddWorkload(context.Background(), w); err != nil {
		t.Fatalf("AddWorkload(%s): %v", name, err)
	}
	return w.ID, w.SocketPath
}

// run starts Run and stops it when the test ends. The returned function
// stops it earlier and reports Run's result.
func (e *testEnv) run(t *testing.T) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(waitTimeout):
				result = errors.New("Run did not return after cancellation")
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

// privateDir returns a temporary directory with mode 0700, as socket
// directories must have.
func privateDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func socketAddr(path string) string { return "unix://" + path }

// rawClient is a plain gRPC client of the socket at path, which sends no
// metadata of its own.
func rawClient(t *testing.T, path string) workloadpb.SpiffeWorkloadAPIClient {
	t.Helper()
	conn, err := grpc.NewClient(socketAddr(path), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return workloadpb.NewSpiffeWorkloadAPIClient(conn)
}

func withSecurityHeader(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
}

// spiffeClient is a stock go-spiffe Workload API client of the socket.
func spiffeClient(t testing.TB, path string) *spiffewl.Client {
	t.Helper()
	c, err := spiffewl.New(context.Background(), spiffewl.WithAddr(socketAddr(path)))
	if err != nil {
		t.Fatalf("workloadapi.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil waits for updates until cond holds.
func waitUntil(t *testing.T, updated <-chan struct{}, cond func() bool, what string) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-updated:
		case <-deadline.C:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}
