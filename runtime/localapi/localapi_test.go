package localapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeBackend []AgentInfo

func (f fakeBackend) Agents(context.Context) []AgentInfo { return f }

func (f fakeBackend) Quarantine(_ context.Context, agent, reason string) error {
	if agent != "research" {
		return fmt.Errorf("%w: %s", ErrUnknownAgent, agent)
	}
	return nil
}

// Release knows research as quarantined and payments as running.
func (f fakeBackend) Release(_ context.Context, agent, reason string) error {
	switch agent {
	case "research":
		return nil
	case "payments":
		return fmt.Errorf("%w: %s", ErrNotQuarantined, agent)
	}
	return fmt.Errorf("%w: %s", ErrUnknownAgent, agent)
}

func (f fakeBackend) RunTask(_ context.Context, req TaskRequest, emit func(TaskEvent) error) error {
	agent, input := req.Agent, req.Input
	if agent != "research" {
		return errors.New("unknown agent " + agent)
	}
	if err := emit(TaskEvent{Type: "thought", Text: "thinking about " + input}); err != nil {
		return err
	}
	return emit(TaskEvent{Type: "final", Text: "answer"})
}

func TestAgentsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	exp := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	want := fakeBackend{{Name: "research", Identity: "spiffe://t/agent/research", State: "running", PID: 42, SVIDExpiresAt: &exp}}
	s, err := Listen(path, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("socket mode = %v, %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	got, err := NewClient(path).Agents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "research" || got[0].PID != 42 || !got[0].SVIDExpiresAt.Equal(exp) {
		t.Fatalf("Agents = %+v", got)
	}
	var events []string
	if err := NewClient(path).RunTask(context.Background(), TaskRequest{Agent: "research", Input: "q"}, func(ev TaskEvent) {
		events = append(events, ev.Type+": "+ev.Text)
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(events, "|") != "thought: thinking about q|final: answer" {
		t.Fatalf("events = %q", events)
	}
	if err := NewClient(path).RunTask(context.Background(), TaskRequest{Agent: "nope", Input: "q"}, func(TaskEvent) {}); err == nil || err.Error() != "unknown agent nope" {
		t.Fatalf("unknown agent: %v", err)
	}

	if err := NewClient(path).Quarantine(context.Background(), "research", "compromised"); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	if err := NewClient(path).Quarantine(context.Background(), "nope", "x"); err == nil || !strings.Contains(err.Error(), "unknown agent") {
		t.Fatalf("Quarantine of an unknown agent: %v", err)
	}
	if err := NewClient(path).Quarantine(context.Background(), "research", ""); err == nil {
		t.Fatal("Quarantine without a reason was accepted")
	}
	if err := NewClient(path).Release(context.Background(), "research", "cleared"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := NewClient(path).Release(context.Background(), "payments", "cleared"); !errors.Is(err, ErrNotQuarantined) {
		t.Fatalf("Release of an agent that is not quarantined: %v", err)
	}
	if err := NewClient(path).Release(context.Background(), "nope", "x"); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("Release of an unknown agent: %v", err)
	}
	if err := NewClient(path).Release(context.Background(), "research", " "); err == nil {
		t.Fatal("Release without a reason was accepted")
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket not removed: %v", err)
	}
	if _, err := NewClient(path).Agents(context.Background()); err == nil {
		t.Fatal("client reached a stopped server")
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, fakeBackend{}, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen error = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatal("Listen changed a regular file")
	}
}
