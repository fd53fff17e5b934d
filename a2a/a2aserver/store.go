package a2aserver

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"
)

// Defaults of the task store (see [Config]).
const (
	DefaultMaxTasks = 10000
	DefaultTaskTTL  = time.Hour
)

// errTooManyTasks reports a full task store; a2a.ErrServerError makes it
// the JSON-RPC error -32000.
var errTooManyTasks = fmt.Errorf("%w: too many tasks, try again later", a2a.ErrServerError)

// taskStore is the in-memory task store shared by a server's agents
// (a2asrv.TaskStore). Every task belongs to the owner (agent, issuer,
// subject, client) in whose request context it was first saved; Get and
// Save in another owner's context act as if the task did not exist. It
// keeps at most max tasks; a task is dropped ttl after its last update
// whatever its state, and when the store is full a new task takes the
// place of the least recently updated task in a final state (completed,
// failed, canceled, rejected); when no task is final it is refused.
// Tasks are held as JSON, so every Get returns a fresh copy. A list in
// update order makes expiry and eviction cost what they drop.
type taskStore struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	tasks map[a2a.TaskID]*list.Element // of *storedTask
	order *list.List                   // least recently updated first
}

type storedTask struct {
	id      a2a.TaskID
	owner   string
	data    []byte
	state   a2a.TaskState
	updated time.Time
}

var _ a2asrv.TaskStore = (*taskStore)(nil)

func newTaskStore(max int, ttl time.Duration, now func() time.Time) *taskStore {
	return &taskStore{max: max, ttl: ttl, now: now, tasks: map[a2a.TaskID]*list.Element{}, order: list.New()}
}

// Save stores task for the owner in ctx.
func (s *taskStore) Save(ctx context.Context, task *a2a.Task) error {
	owner := ownerFrom(ctx)
	if owner == "" {
		return errors.New("a2aserver: save of a task outside a caller's request")
	}
	if task == nil || task.ID == "" {
		return fmt.Errorf("a2aserver: save of a task without id: %w", a2a.ErrInvalidParams)
	}
	data, err := json.Marshal(task)
	if err != nil {
		return fmt.Errorf("a2aserver: task %s: %w", task.ID, err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if e, ok := s.tasks[task.ID]; ok {
		t := e.Value.(*storedTask)
		if t.owner != owner {
			return a2a.ErrTaskNotFound
		}
		t.data, t.state, t.updated = data, task.Status.State, now
		s.order.MoveToBack(e)
		return nil
	}
	if !s.roomLocked(true) {
		return errTooManyTasks
	}
	s.tasks[task.ID] = s.order.PushBack(&storedTask{id: task.ID, owner: owner, data: data, state: task.Status.State, updated: now})
	return nil
}

// Get returns the task for the owner in ctx, or a2a.ErrTaskNotFound.
func (s *taskStore) Get(ctx context.Context, id a2a.TaskID) (*a2a.Task, error) {
	owner := ownerFrom(ctx)
	s.mu.Lock()
	s.sweepLocked(s.now())
	var data []byte
	e, ok := s.tasks[id]
	if ok && owner != "" && e.Value.(*storedTask).owner == owner {
		data = e.Value.(*storedTask).data
	}
	s.mu.Unlock()
	if data == nil {
		return nil, a2a.ErrTaskNotFound
	}
	var task a2a.Task
	if err := json.Unmarshal(data, &task); err != nil {
		return nil, fmt.Errorf("a2aserver: task %s: %w", id, err)
	}
	return &task, nil
}

// owns reports whether the task id exists and belongs to owner.
func (s *taskStore) owns(owner string, id a2a.TaskID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	e, ok := s.tasks[id]
	return ok && owner != "" && e.Value.(*storedTask).owner == owner
}

// admit reports whether a new task could be stored now.
func (s *taskStore) admit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	if !s.roomLocked(false) {
		return errTooManyTasks
	}
	return nil
}

// len is the number of tasks held.
func (s *taskStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tasks)
}

// roomLocked reports whether one more task fits and, when evict is set,
// drops the least recently updated final task to make room.
func (s *taskStore) roomLocked(evict bool) bool {
	if len(s.tasks) < s.max {
		return true
	}
	for e := s.order.Front(); e != nil; e = e.Next() {
		if t := e.Value.(*storedTask); t.state.Terminal() {
			if evict {
				s.removeLocked(e)
			}
			return true
		}
	}
	return false
}

// sweepLocked drops the tasks last updated ttl or more before now.
func (s *taskStore) sweepLocked(now time.Time) {
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		if now.Before(e.Value.(*storedTask).updated.Add(s.ttl)) {
			return
		}
		s.removeLocked(e)
	}
}

func (s *taskStore) removeLocked(e *list.Element) {
	delete(s.tasks, e.Value.(*storedTask).id)
	s.order.Remove(e)
}
