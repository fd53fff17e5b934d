package supervisor

import (
	"slices"
	"sync"
	"testing"
)

// TestOnRestart: a plugin that crashes is reported once per restart, by
// agent, and a plugin that keeps running is not reported.
func TestOnRestart(t *testing.T) {
	var mu sync.Mutex
	var restarted []string
	cfg := fast
	cfg.OnRestart = func(agent string) {
		mu.Lock()
		defer mu.Unlock()
		restarted = append(restarted, agent)
	}
	s := start(t, cfg, selfSpec(t, "a"), selfSpec(t, "b"))
	wait(t, s, "a", "first start", running)
	wait(t, s, "b", "first start", running)
	if _, err := runTask(s, "a", "crash"); err == nil {
		t.Fatal("a task whose plugin crashed returned no error")
	}
	wait(t, s, "a", "restart", func(st AgentStatus) bool { return running(st) && st.Restarts == 1 })
	if out, err := runTask(s, "b", "hello"); err != nil || out != "done: hello" {
		t.Fatalf("task on b = %q, %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(restarted, []string{"a"}) {
		t.Fatalf("restarts reported: %q, want [a]", restarted)
	}
}
