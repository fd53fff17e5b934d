package console

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTaskLog: the console's task ring keeps a task's events (the
// latest MaxTaskEvents, counting the others), its answer or error and
// its end, wakes whoever watches it at each change, and, full, drops the
// oldest task that ended, never one that runs.
func TestTaskLog(t *testing.T) {
	l := NewTaskLog(time.Now)
	emit := l.Begin(Task{ID: "t1", Agent: "research", User: "alice", Txn: "txn-1", Input: strings.Repeat("x", MaxTaskText+10)})
	task, changed, ok := l.Watch("t1")
	if !ok || task.State != TaskRunning || task.User != "alice" || task.Txn != "txn-1" || len(task.Input) > MaxTaskText+len("…") {
		t.Fatalf("a started task: %+v", task)
	}
	for i := range MaxTaskEvents + 5 {
		emit(TaskEvent{Type: "thought", Text: fmt.Sprint(i)})
	}
	select {
	case <-changed:
	default:
		t.Fatal("an event did not wake the watcher")
	}
	emit(TaskEvent{Type: "final", Text: "done"})
	l.End("t1", nil)
	task, _, _ = l.Watch("t1")
	if len(task.Events) != MaxTaskEvents || task.Dropped != 6 ||
		task.Events[0].Seq != 7 || task.Events[len(task.Events)-1].Type != "final" {
		t.Errorf("events: %d kept from seq %d, %d dropped", len(task.Events), task.Events[0].Seq, task.Dropped)
	}
	if task.State != TaskCompleted || task.Result != "done" || task.Ended.IsZero() {
		t.Errorf("the ended task: %s %q", task.State, task.Result)
	}

	l.Begin(Task{ID: "t2", Agent: "payments", Input: "x"})
	l.End("t2", errors.New("host: task stopped: revoked"))
	if task, _, _ := l.Watch("t2"); task.State != TaskFailed || task.Result != "host: task stopped: revoked" {
		t.Errorf("a failed task: %+v", task)
	}

	// Full: running tasks stay, the oldest ended ones go.
	running := NewTaskLog(time.Now)
	running.Begin(Task{ID: "run"})
	for i := range MaxTasks + 2 {
		id := fmt.Sprintf("done-%d", i)
		running.Begin(Task{ID: id})
		running.End(id, nil)
	}
	list := running.List()
	if len(list) != MaxTasks || list[0].ID != fmt.Sprintf("done-%d", MaxTasks+1) || list[len(list)-1].ID != "run" {
		t.Errorf("the full ring: %d tasks, newest %s, oldest %s", len(list), list[0].ID, list[len(list)-1].ID)
	}
	if _, _, ok := running.Watch("done-0"); ok {
		t.Error("the oldest ended task is still kept")
	}

	// A nil log (no console) keeps nothing.
	var none *TaskLog
	if none.Begin(Task{ID: "t"}) != nil {
		t.Error("a nil task log records events")
	}
	none.End("t", nil)
	if _, _, ok := none.Watch("t"); ok || none.List() != nil {
		t.Error("a nil task log keeps tasks")
	}
}
