package host

import (
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/console"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// TestConsoleTaskOfHost: a task's events reach its emitter and the
// console's task log; without a console they pass through.
func TestConsoleTaskOfHost(t *testing.T) {
	h := &Host{consoleTasks: console.NewTaskLog(time.Now)}
	n := 0
	emit := h.consoleTask("t1", mediator.Caller{Agent: "research", Subject: "alice", Txn: "txn-1"}, "what time is it",
		func(localapi.TaskEvent) error { n++; return nil })
	if err := emit(localapi.TaskEvent{Type: "final", Text: "noon"}); err != nil || n != 1 {
		t.Fatalf("emit: %v, %d sent", err, n)
	}
	task, _, ok := h.consoleTasks.Watch("t1")
	if !ok || task.User != "alice" || task.Txn != "txn-1" || task.Input != "what time is it" || task.Result != "noon" ||
		len(task.Events) != 1 || task.Events[0].Type != "final" {
		t.Errorf("the console's task: %+v", task)
	}
	none := &Host{}
	_ = none.consoleTask("t", mediator.Caller{}, "", func(localapi.TaskEvent) error { n++; return nil })(localapi.TaskEvent{})
	if n != 2 {
		t.Error("without a console the events do not pass through")
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
