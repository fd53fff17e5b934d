package host

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/console"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// TestConsoleTaskLog: the console's task ring keeps a task's events (the
// latest maxConsoleEvents, counting the others), its answer or error and
// its end, wakes whoever watches it at each change, and, full, drops the
// oldest task that ended, never one that runs.
func TestConsoleTaskLog(t *testing.T) {
	l := newTaskLog(time.Now)
	var sent int
	emit := l.begin("t1", mediator.Caller{Agent: "research", Subject: "alice", Txn: "txn-1"}, strings.Repeat("x", maxConsoleText+10),
		func(localapi.TaskEvent) error { sent++; return nil })
	task, changed, ok := l.watch("t1")
	if !ok || task.State != console.TaskRunning || task.User != "alice" || task.Txn != "txn-1" || len(task.Input) > maxConsoleText+len("…") {
		t.Fatalf("a started task: %+v", task)
	}
	for i := range maxConsoleEvents + 5 {
		if err := emit(localapi.TaskEvent{Type: "thought", Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-changed:
	default:
		t.Fatal("an event did not wake the watcher")
	}
	_ = emit(localapi.TaskEvent{Type: "final", Text: "done"})
	l.end("t1", nil)
	task, _, _ = l.watch("t1")
	if sent != maxConsoleEvents+6 || len(task.Events) != maxConsoleEvents || task.Dropped != 6 ||
		task.Events[0].Seq != 7 || task.Events[len(task.Events)-1].Type != "final" {
		t.Errorf("events: %d sent, %d kept from seq %d, %d dropped", sent, len(task.Events), task.Events[0].Seq, task.Dropped)
	}
	if task.State != console.TaskCompleted || task.Result != "done" || task.Ended.IsZero() {
		t.Errorf("the ended task: %s %q", task.State, task.Result)
	}

	l.begin("t2", mediator.Caller{Agent: "payments"}, "x", func(localapi.TaskEvent) error { return nil })
	l.end("t2", errors.New("host: task stopped: revoked"))
	if task, _, _ := l.watch("t2"); task.State != console.TaskFailed || task.Result != "host: task stopped: revoked" {
		t.Errorf("a failed task: %+v", task)
	}

	// Full: running tasks stay, the oldest ended ones go.
	running := newTaskLog(time.Now)
	running.begin("run", mediator.Caller{}, "", nil)
	for i := range maxConsoleTasks + 2 {
		id := fmt.Sprintf("done-%d", i)
		running.begin(id, mediator.Caller{}, "", nil)
		running.end(id, nil)
	}
	list := running.list()
	if len(list) != maxConsoleTasks || list[0].ID != fmt.Sprintf("done-%d", maxConsoleTasks+1) || list[len(list)-1].ID != "run" {
		t.Errorf("the full ring: %d tasks, newest %s, oldest %s", len(list), list[0].ID, list[len(list)-1].ID)
	}
	if _, _, ok := running.watch("done-0"); ok {
		t.Error("the oldest ended task is still kept")
	}

	// Without a console nothing is kept and the events pass through.
	var none *taskLog
	n := 0
	_ = none.begin("t", mediator.Caller{}, "", func(localapi.TaskEvent) error { n++; return nil })(localapi.TaskEvent{})
	none.end("t", nil)
	if _, _, ok := none.watch("t"); ok || n != 1 || none.list() != nil {
		t.Error("a nil task log keeps tasks")
	}
}

// TestConsoleClient: the console's client is public, code flow only, with
// the console's redirect URI; a configured client of the same ID is
// refused.
func TestConsoleClient(t *testing.T) {
	c := ConsoleClient("https://agents.example.com")
	if c.AuthMethod != "none" || c.SecretHash != "" || strings.Join(c.GrantTypes, " ") != "authorization_code" ||
		strings.Join(c.RedirectURIs, " ") != "https://agents.example.com/console/callback" || strings.Join(c.Scopes, " ") != "openid profile" {
		t.Errorf("console client %+v", c)
	}
	h := &Host{cfg: approvalConfig(t)}
	if _, err := h.addConsoleClient([]authserver.StaticClient{{ID: ConsoleClientID}}); err == nil || !strings.Contains(err.Error(), "console") {
		t.Errorf("a configured client named %s: %v", ConsoleClientID, err)
	}
}
