package host

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// Task is a long-running part of the host. It runs until ctx is done or it
// fails; returning nil or context.Canceled after cancellation is a clean
// exit.
type Task struct {
	Name string
	Run  func(ctx context.Context) error
}

// RunTasks starts every task and waits for all of them to return. The first
// task to return an error (or to return at all while the others are still
// expected to run) cancels the rest. A panic in a task is recovered and
// reported as that task's error. Cancellation of ctx is a clean exit: the
// result is nil unless some task failed for another reason.
func RunTasks(ctx context.Context, tasks ...Task) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			err := runTask(ctx, t)
			switch {
			case err == nil, errors.Is(err, context.Canceled) && ctx.Err() != nil:
				if ctx.Err() == nil {
					// A task that stops by itself while the host is
					// meant to run is a failure: the host cannot serve
					// without it.
					record(fmt.Errorf("host: task %s stopped unexpectedly", t.Name))
				}
			default:
				record(fmt.Errorf("host: task %s: %w", t.Name, err))
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func runTask(ctx context.Context, t Task) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return t.Run(ctx)
}
