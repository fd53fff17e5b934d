package host

import (
	"sync"
	"time"
	"unicode/utf8"

	"github.com/agenthost/agenthost/runtime/console"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// The console's running and recent tasks: a bounded ring in memory, fed
// by each task's events as the host runs it (runTask). It is this host's
// tasks since it started; the audit log keeps the record of every task.

// Bounds of the task ring.
const (
	// maxConsoleTasks is how many tasks the ring keeps; the oldest that
	// ended goes first.
	maxConsoleTasks = 256
	// maxConsoleEvents is how many of a task's latest events it keeps.
	maxConsoleEvents = 200
	// maxConsoleText cuts a task's input and each event's text.
	maxConsoleText = 4 << 10
)

// taskLog is the ring. Its methods are safe for concurrent use, and a nil
// taskLog (no console) keeps nothing.
type taskLog struct {
	now func() time.Time
	mu  sync.Mutex
	// order holds the tasks oldest first.
	order []*taskEntry
	byID  map[string]*taskEntry
}

// taskEntry is one task and the channel closed at its next change.
type taskEntry struct {
	task    console.Task
	seq     int
	changed chan struct{}
}

func newTaskLog(now func() time.Time) *taskLog {
	return &taskLog{now: now, byID: map[string]*taskEntry{}}
}

// begin records the start of task id made as c with input, and returns
// emit wrapped to record each event the task sends.
func (l *taskLog) begin(id string, c mediator.Caller, input string, emit func(localapi.TaskEvent) error) func(localapi.TaskEvent) error {
	if l == nil {
		return emit
	}
	e := &taskEntry{changed: make(chan struct{}), task: console.Task{ID: id, Txn: c.Txn, ParentTask: c.ParentTask, Agent: c.Agent,
		User: c.Subject, SubjectSource: c.SubjectSource, Input: cut(input), Started: l.now().UTC(), State: console.TaskRunning}}
	l.mu.Lock()
	if len(l.order) >= maxConsoleTasks {
		drop := 0
		for i, o := range l.order {
			if o.task.State != console.TaskRunning {
				drop = i
				break
			}
		}
		delete(l.byID, l.order[drop].task.ID)
		l.order = append(l.order[:drop], l.order[drop+1:]...)
	}
	l.order = append(l.order, e)
	l.byID[id] = e
	l.mu.Unlock()
	return func(ev localapi.TaskEvent) error {
		l.event(e, ev)
		return emit(ev)
	}
}

// event records ev of e's task.
func (l *taskLog) event(e *taskEntry, ev localapi.TaskEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.seq++
	t := &e.task
	t.Events = append(t.Events, console.TaskEvent{Seq: e.seq, Time: l.now().UTC(), Type: ev.Type, Text: cut(ev.Text),
		Tool: cut(ev.Tool), Arguments: cut(ev.Arguments)})
	if n := len(t.Events) - maxConsoleEvents; n > 0 {
		t.Events = append(t.Events[:0:0], t.Events[n:]...)
		t.Dropped += n
	}
	switch ev.Type {
	case "final":
		t.Result = cut(ev.Text)
	case "error":
		t.Result = cut(ev.Text)
		t.State = console.TaskFailed
	}
	l.changedLocked(e)
}

// end records the end of task id: failed when it returned err or sent an
// error event.
func (l *taskLog) end(id string, err error) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.byID[id]
	if e == nil {
		return
	}
	t := &e.task
	t.Ended = l.now().UTC()
	switch {
	case err != nil:
		t.State, t.Result = console.TaskFailed, cut(err.Error())
	case t.State == console.TaskRunning:
		t.State = console.TaskCompleted
	}
	l.changedLocked(e)
}

func (l *taskLog) changedLocked(e *taskEntry) {
	close(e.changed)
	e.changed = make(chan struct{})
}

// list returns the tasks newest first, without their events.
func (l *taskLog) list() []console.Task {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]console.Task, 0, len(l.order))
	for i := len(l.order) - 1; i >= 0; i-- {
		t := l.order[i].task
		t.Events = nil
		out = append(out, t)
	}
	return out
}

// watch returns task id with its events and the channel closed at its
// next change.
func (l *taskLog) watch(id string) (console.Task, <-chan struct{}, bool) {
	if l == nil {
		return console.Task{}, nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.byID[id]
	if e == nil {
		return console.Task{}, nil, false
	}
	t := e.task
	t.Events = append([]console.TaskEvent(nil), t.Events...)
	return t, e.changed, true
}

// cut shortens s to maxConsoleText bytes, on a character boundary.
func cut(s string) string {
	if len(s) <= maxConsoleText {
		return s
	}
	n := maxConsoleText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
