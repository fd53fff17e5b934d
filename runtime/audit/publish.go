package audit

import (
	"context"
	"sync"
)

// publisher hands the log's checkpoints, in order, to Config.Publish in a
// goroutine of its own, so that a slow or unreachable destination never
// holds up a commit.
type publisher struct {
	fn func(context.Context, *Log, []byte)

	mu       sync.Mutex
	queue    [][]byte
	queued   int64         // checkpoints handed to add
	done     int64         // checkpoints fn returned from
	changed  chan struct{} // closed (and replaced) when done grows
	stopping bool
	wake     chan struct{}
	finished chan struct{}
}

func newPublisher(fn func(context.Context, *Log, []byte)) *publisher {
	return &publisher{fn: fn, changed: make(chan struct{}), wake: make(chan struct{}, 1), finished: make(chan struct{})}
}

// add queues a checkpoint and returns its publication number.
func (p *publisher) add(checkpoint []byte) int64 {
	p.mu.Lock()
	p.queue = append(p.queue, checkpoint)
	p.queued++
	seq := p.queued
	p.mu.Unlock()
	p.poke()
	return seq
}

func (p *publisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run publishes until stop is called and the queue is empty. Once ctx is
// done, what is left in the queue is dropped.
func (p *publisher) run(ctx context.Context, l *Log) {
	defer close(p.finished)
	for {
		p.mu.Lock()
		q, stopping := p.queue, p.stopping
		p.queue = nil
		p.mu.Unlock()
		for _, cp := range q {
			if ctx.Err() == nil {
				p.fn(ctx, l, cp)
			}
			p.mu.Lock()
			p.done++
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		if len(q) > 0 {
			continue
		}
		if stopping {
			return
		}
		<-p.wake
	}
}

// wait returns once checkpoint number seq was published, or ctx is done.
func (p *publisher) wait(ctx context.Context, seq int64) error {
	if p == nil {
		return nil
	}
	for {
		p.mu.Lock()
		done, ch := p.done, p.changed
		p.mu.Unlock()
		if done >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop lets the publisher finish the queue and end, and waits for it
// (bounded by ctx).
func (p *publisher) stop(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.poke()
	select {
	case <-p.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
