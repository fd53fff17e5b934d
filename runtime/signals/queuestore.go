package signals

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// QueuedSET is one undelivered SET of a stream, as a [QueueStore] keeps
// it.
type QueuedSET struct {
	JTI  string `json:"jti"`
	SET  string `json:"set"`
	Type string `json:"type"`
	// Control marks stream events (stream-updated, verification).
	Control bool `json:"control,omitempty"`
}

// QueueStore keeps the transmitter's undelivered SETs, so that a restart
// does not lose them. The transmitter saves a stream's whole queue after
// it changes (at most every [QueueSaveInterval], and on Close), and loads
// every queue when it is created. Delivery is therefore at least once: a
// SET delivered just before a crash may be delivered again, and receivers
// drop it by its jti.
type QueueStore interface {
	// SaveQueue replaces the stored queue of stream; an empty sets
	// removes it.
	SaveQueue(ctx context.Context, stream string, sets []QueuedSET) error
	// LoadQueues returns every stored queue by stream id.
	LoadQueues(ctx context.Context) (map[string][]QueuedSET, error)
}

// QueueSaveInterval is how often changed queues are saved.
const QueueSaveInterval = 200 * time.Millisecond

// queueSaver saves the queues whose contents changed since their last
// save.
type queueSaver struct {
	t     *Transmitter
	store QueueStore
	mu    sync.Mutex                   // serializes saves
	saved map[string][sha256.Size]byte // fingerprint of each queue as last saved
}

// fingerprint identifies a queue's contents; t.mu must be held.
func fingerprint(q *queue) [sha256.Size]byte {
	h := sha256.New()
	for _, it := range q.items {
		h.Write([]byte(it.jti))
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// saveChanged saves every queue that changed since it was last saved.
func (s *queueSaver) saveChanged(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type snapshot struct {
		id   string
		sets []QueuedSET
		fp   [sha256.Size]byte
	}
	var changed []snapshot
	s.t.mu.Lock()
	for id, q := range s.t.queues {
		fp := fingerprint(q)
		if last, ok := s.saved[id]; ok && last == fp {
			continue
		}
		if _, ok := s.saved[id]; !ok && len(q.items) == 0 {
			continue
		}
		sets := make([]QueuedSET, len(q.items))
		for i, it := range q.items {
			sets[i] = QueuedSET{JTI: it.jti, SET: it.set, Type: it.typ, Control: it.control}
		}
		changed = append(changed, snapshot{id, sets, fp})
	}
	s.t.mu.Unlock()
	for _, c := range changed {
		if err := s.store.SaveQueue(ctx, c.id, c.sets); err != nil {
			s.t.log.Warn("signals: could not save a stream queue", "stream", c.id, "error", err)
			continue
		}
		s.saved[c.id] = c.fp
	}
}

// run saves changed queues every QueueSaveInterval until ctx ends, then
// once more.
func (s *queueSaver) run(ctx context.Context) {
	tick := time.NewTicker(QueueSaveInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.saveChanged(context.WithoutCancel(ctx))
			return
		case <-tick.C:
			s.saveChanged(ctx)
		}
	}
}

// loadQueues fills the transmitter's queues from the store and starts the
// push deliveries they need. A queue whose stream no longer exists is
// dropped.
func (t *Transmitter) loadQueues(ctx context.Context) error {
	stored, err := t.cfg.Queues.LoadQueues(ctx)
	if err != nil {
		return err
	}
	t.saver.saved = make(map[string][sha256.Size]byte)
	var push []Stream
	for id, sets := range stored {
		s, err := t.cfg.Store.GetStream(ctx, id)
		if err != nil {
			_ = t.cfg.Queues.SaveQueue(ctx, id, nil)
			continue
		}
		t.mu.Lock()
		q := t.queueFor(id)
		for _, it := range sets {
			q.items = append(q.items, queued{jti: it.JTI, set: it.SET, typ: it.Type, control: it.Control})
		}
		t.saver.saved[id] = fingerprint(q)
		t.mu.Unlock()
		push = append(push, s)
	}
	for _, s := range push {
		t.kick(s)
	}
	return nil
}
