package console

import (
	"sync"
	"time"
	"unicode/utf8"
)

// The running and recent tasks of this host, as the tasks page shows
// them: a bounded ring in memory, fed by each task's events as the host
// runs it. It is this host's tasks since it started; the audit log keeps
// the record of every task.

// Bounds of the task ring.
const (
	// MaxTasks is how many tasks the ring keeps; the oldest that
	// ended goes first.
	MaxTasks = 256
	// MaxTaskEvents is how many of a task's latest events it keeps.
	MaxTaskEvents = 200
	// MaxTaskText cuts a task's input and each event's text.
	MaxTaskText = 4 << 10
)

// TaskLog is the ring. Its methods are safe for concurrent use, and a nil
// TaskLog (no console) keeps nothing.
type TaskLog struct {
	now func() time.Time
	mu  sync.Mutex
	// order holds the tasks oldest first.
	order []*taskEntry
	byID  map[string]*taskEntry
}

// taskEntry is one task and the channel closed at its next change.
type taskEntry struct {
	task    Task
	seq     int
	changed chan struct{}
}

// NewTaskLog returns an empty ring on the clock now.
func NewTaskLog(now func() time.Time) *TaskLog {
	return &TaskLog{now: now, byID: map[string]*taskEntry{}}
}

// Begin records the start of task t (its ID, transaction, agent, user
// and input; its state and start time are set here) and returns the
// function that records each event the task sends, nil for a nil TaskLog.
func (l *TaskLog) Begin(t Task) func(TaskEvent) {
	if l == nil {
		return nil
	}
	t.Input, t.Started, t.State, t.Events = cut(t.Input), l.now().UTC(), TaskRunning, nil
	e := &taskEntry{changed: make(chan struct{}), task: t}
	l.mu.Lock()
	if len(l.order) >= MaxTasks {
		drop := 0
		for i, o := range l.order {
			if o.task.State != TaskRunning {
				drop = i
				break
			}
		}
		delete(l.byID, l.order[drop].task.ID)
		l.order = append(l.order[:drop], l.order[drop+1:]...)
	}
	l.order = append(l.order, e)
	l.byID[t.ID] = e
	l.mu.Unlock()
	return func(ev TaskEvent) { l.event(e, ev) }
}

// event records ev of e's task; its sequence number and time are set
// here.
func (l *TaskLog) event(e *taskEntry, ev TaskEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.seq++
	t := &e.task
	t.Events = append(t.Events, TaskEvent{Seq: e.seq, Time: l.now().UTC(), Type: ev.Type, Text: cut(ev.Text),
		Tool: cut(ev.Tool), Arguments: cut(ev.Arguments)})
	if n := len(t.Events) - MaxTaskEvents; n > 0 {
		t.Events = append(t.Events[:0:0], t.Events[n:]...)
		t.Dropped += n
	}
	switch ev.Type {
	case "final":
		t.Result = cut(ev.Text)
	case "error":
		t.Result = cut(ev.Text)
		t.State = TaskFailed
	}
	l.changedLocked(e)
}

// End records the end of task id: failed when it returned err or sent an
// error event.
func (l *TaskLog) End(id string, err error) {
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
		t.State, t.Result = TaskFailed, cut(err.Error())
	case t.State == TaskRunning:
		t.State = TaskCompleted
	}
	l.changedLocked(e)
}

func (l *TaskLog) changedLocked(e *taskEntry) {
	close(e.changed)
	e.changed = make(chan struct{})
}

// List returns the tasks newest first, without their events.
func (l *TaskLog) List() []Task {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Task, 0, len(l.order))
	for i := len(l.order) - 1; i >= 0; i-- {
		t := l.order[i].task
		t.Events = nil
		out = append(out, t)
	}
	return out
}

// Watch returns task id with its events and the channel closed at its
// next change.
func (l *TaskLog) Watch(id string) (Task, <-chan struct{}, bool) {
	if l == nil {
		return Task{}, nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.byID[id]
	if e == nil {
		return Task{}, nil, false
	}
	t := e.task
	t.Events = append([]TaskEvent(nil), t.Events...)
	return t, e.changed, true
}

// cut shortens s to MaxTaskText bytes, on a character boundary.
func cut(s string) string {
	if len(s) <= MaxTaskText {
		return s
	}
	n := MaxTaskText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
