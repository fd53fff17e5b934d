package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestPeerPolicy(t *testing.T) {
	const hostUID = 1000
	errPlugin := errors.New("pid 42 is a plugin process")
	tests := []struct {
		name      string
		check     func(Peer) error
		peer      Peer
		wantMsg   string // empty: admitted
		wantErr   error  // an error the refusal must also wrap
		wantCheck bool   // whether the check must be consulted
	}{
		{name: "host's uid", peer: Peer{PID: 42, UID: hostUID}},
		{
			name:      "host's uid, check accepts",
			check:     func(Peer) error { return nil },
			peer:      Peer{PID: 42, UID: hostUID},
			wantCheck: true,
		},
		{
			name:    "another uid",
			check:   func(Peer) error { return nil },
			peer:    Peer{PID: 42, UID: 1001},
			wantMsg: "uid 1001 is not the host's uid 1000",
		},
		{
			name:    "root is another uid too",
			peer:    Peer{PID: 42, UID: 0},
			wantMsg: "uid 0 is not the host's uid 1000",
		},
		{
			name:    "pid not visible",
			check:   func(Peer) error { return nil },
			peer:    Peer{PID: 0, UID: hostUID},
			wantMsg: "not visible in the host's pid namespace",
		},
		{
			name:      "check refuses",
			check:     func(Peer) error { return errPlugin },
			peer:      Peer{PID: 42, UID: hostUID},
			wantMsg:   "pid 42 is a plugin process",
			wantErr:   errPlugin,
			wantCheck: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checked []Peer
			pp := peerPolicy{uid: hostUID}
			if tt.check != nil {
				pp.check = func(p Peer) error {
					checked = append(checked, p)
					return tt.check(p)
				}
			}
			err := pp.admit(tt.peer)
			if got := len(checked) == 1 && checked[0] == tt.peer; got != tt.wantCheck {
				t.Errorf("check consulted with %v, want consulted: %v", checked, tt.wantCheck)
			}
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("admit: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("admit = %v, want ErrRefused", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("admit = %q, want it to contain %q", err, tt.wantMsg)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("admit = %v, want it to wrap %v", err, tt.wantErr)
			}
		})
	}
}

// refusals records a server's RefuseEvents and the peers its PeerCheck saw.
type refusals struct {
	mu      sync.Mutex
	events  []RefuseEvent
	checked []Peer
}

func (r *refusals) record(_ context.Context, ev RefuseEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// onlyThisProcess is a PeerCheck that admits the test process alone.
func (r *refusals) onlyThisProcess(p Peer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = append(r.checked, p)
	if p.PID != os.Getpid() {
		return errors.New("pid " + strconv.Itoa(p.PID) + " is not the test process")
	}
	return nil
}

func (r *refusals) snapshot() ([]RefuseEvent, []Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RefuseEvent(nil), r.events...), append([]Peer(nil), r.checked...)
}

// serveConfig runs a server for cfg until the test ends.
func serveConfig(t *testing.T, cfg Config) {
	t.Helper()
	s, err := ListenConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// runClientProcess runs exe as a client of the socket at path, with attr
// applied, and returns what it saw.
func runClientProcess(t *testing.T, exe, path string, attr *syscall.SysProcAttr) clientResult {
	t.Helper()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), clientEnv+"="+path)
	cmd.Dir = filepath.Dir(exe)
	cmd.SysProcAttr = attr
	out, err := cmd.Output()
	if err != nil && attr != nil && attr.Credential != nil && errors.Is(err, fs.ErrPermission) {
		t.Skipf("cannot start a process as uid %d here: %v", attr.Credential.Uid, err)
	}
	if err != nil {
		t.Fatalf("client process: %v (output %q)", err, out)
	}
	var res clientResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("client process printed %q: %v", out, err)
	}
	if res.Error != "" {
		t.Fatalf("client process could not call the API: %s", res.Error)
	}
	return res
}

// wantRefusal checks a client process's 403 and the OnRefuse event for it.
func wantRefusal(t *testing.T, res clientResult, events []RefuseEvent, wantMsg string) {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if res.Status != 403 || json.Unmarshal([]byte(res.Body), &body) != nil || !strings.Contains(body.Error, wantMsg) {
		t.Errorf("client pid %d got %d %s, want 403 with an error containing %q", res.PID, res.Status, res.Body, wantMsg)
	}
	var n int
	for _, ev := range events {
		if ev.Peer.PID != res.PID {
			continue
		}
		n++
		if !errors.Is(ev.Reason, ErrRefused) || ev.Reason.Error() != body.Error {
			t.Errorf("refusal of pid %d: reason %v, want the 403's %q", res.PID, ev.Reason, body.Error)
		}
	}
	if n != 1 {
		t.Errorf("OnRefuse called %d times for pid %d, want once: %+v", n, res.PID, events)
	}
}

// TestPeerCheckSameUser: the in-process client is admitted; a child process
// of the same user that the PeerCheck refuses gets 403 naming the reason,
// and OnRefuse hears of it once.
func TestPeerCheckSameUser(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), SocketName)
	rec := &refusals{}
	serveConfig(t, Config{Path: path, Backend: fakeBackend{{Name: "research"}}, PeerCheck: rec.onlyThisProcess, OnRefuse: rec.record})

	got, err := NewClient(path).Agents(context.Background())
	if err != nil || len(got) != 1 || got[0].Name != "research" {
		t.Fatalf("in-process Agents = %+v, %v", got, err)
	}

	res := runClientProcess(t, exe, path, nil)
	events, checked := rec.snapshot()
	wantRefusal(t, res, events, "localapi: connection refused: pid "+strconv.Itoa(res.PID)+" is not the test process")
	want := Peer{PID: res.PID, UID: os.Geteuid(), GID: os.Getegid()}
	var sawChild bool
	for _, p := range checked {
		sawChild = sawChild || p == want
	}
	if !sawChild {
		t.Errorf("PeerCheck saw %+v, want the child's credentials %+v among them", checked, want)
	}
	if len(events) != 1 {
		t.Errorf("OnRefuse events = %+v, want only the child's", events)
	}

	// The in-process client is still admitted after the refusal.
	if _, err := NewClient(path).Agents(context.Background()); err != nil {
		t.Fatalf("in-process Agents after a refusal: %v", err)
	}
}

// TestPeerCheckRefusesEverything: a refused Client gets an error wrapping
// ErrRefused with the host's reason, on every endpoint.
func TestPeerCheckRefusesEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	rec := &refusals{}
	serveConfig(t, Config{Path: path, Backend: newFakeAudit(), OnRefuse: rec.record,
		PeerCheck: func(Peer) error { return errors.New("no one may") }})
	c := NewClient(path)
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"Agents", func() error { _, err := c.Agents(ctx); return err }},
		{"RunTask", func() error {
			return c.RunTask(ctx, TaskRequest{Agent: "research", Input: "q"}, func(TaskEvent) {})
		}},
		{"Quarantine", func() error { return c.Quarantine(ctx, "research", "x") }},
		{"Release", func() error { return c.Release(ctx, "research", "x") }},
		{"AuditVerify", func() error { _, err := c.AuditVerify(ctx); return err }},
		{"PolicyReload", func() error { _, err := c.PolicyReload(ctx); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrRefused) || err.Error() != "localapi: connection refused: no one may" {
				t.Fatalf("%s = %v, want ErrRefused with the reason", tt.name, err)
			}
		})
	}
	events, _ := rec.snapshot()
	if len(events) == 0 {
		t.Fatal("no OnRefuse event")
	}
	for _, ev := range events {
		if ev.Peer.PID != os.Getpid() || ev.Peer.UID != os.Geteuid() {
			t.Errorf("refused peer = %+v, want this process", ev.Peer)
		}
	}
}

// TestPeerCheckOtherUser: a process of another user is refused even when
// the socket's mode lets it connect. Run as root, the test starts a copy of
// itself as uid 65534.
func TestPeerCheckOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts a client process as uid 65534")
	}
	const nobody = 65534
	dir := t.TempDir()
	// The copy and the socket must be reachable by the other user.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "client")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SocketName)
	rec := &refusals{}
	serveConfig(t, Config{Path: path, Backend: fakeBackend{}, OnRefuse: rec.record,
		PeerCheck: func(p Peer) error {
			if p.UID != os.Geteuid() {
				t.Errorf("PeerCheck consulted for uid %d", p.UID)
			}
			return nil
		}})
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}

	res := runClientProcess(t, exe, path, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}})
	events, _ := rec.snapshot()
	wantRefusal(t, res, events, "uid 65534 is not the host's uid 0")
	for _, ev := range events {
		if ev.Peer.UID != nobody || ev.Peer.GID != nobody {
			t.Errorf("refused peer = %+v, want uid and gid %d", ev.Peer, nobody)
		}
	}

	if _, err := NewClient(path).Agents(context.Background()); err != nil {
		t.Fatalf("in-process Agents: %v", err)
	}
}
