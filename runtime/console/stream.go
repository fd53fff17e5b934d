package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/consent"
)

// Limits of the task event streams.
const (
	// maxStreams bounds the streams open at once; beyond it a stream is
	// refused (503) and the page stays as it was rendered.
	maxStreams = 128
	// streamLifetime ends a stream after a while; the browser's
	// EventSource connects again, from the last event it received.
	streamLifetime = 5 * time.Minute
	// keepAlive is how often an idle stream sends a comment.
	keepAlive = 15 * time.Second
	// writeTimeout bounds each write to the stream.
	writeTimeout = 10 * time.Second
)

// streamState is the "state" event: the task's state and result.
type streamState struct {
	State  string `json:"state"`
	Result string `json:"result,omitempty"`
	Ended  string `json:"ended,omitempty"`
}

// taskEvents serves a task's events as server-sent events (HTML Living
// Standard §9.2): "task-event" for each event after the one the page
// showed (the after parameter, or the Last-Event-ID of a reconnecting
// browser), "state" when the task ends, then "end". Its script
// (static/live.js) adds them to the page.
func (c *Console) taskEvents(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	id := r.PathValue("id")
	t, changed, ok := c.b.WatchTask(ctx, id)
	if !ok || !canSee(s, t) {
		http.NotFound(w, r)
		return
	}
	if c.streams.Add(1) > maxStreams {
		c.streams.Add(-1)
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many streams", http.StatusServiceUnavailable)
		return
	}
	defer c.streams.Add(-1)
	last := 0
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")} {
		if n, err := strconv.Atoi(v); err == nil && n > last {
			last = n
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	send := func(event, id string, v any) bool {
		data, err := json.Marshal(v)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if id != "" {
			_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", id, event, data)
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		}
		return err == nil && rc.Flush() == nil
	}
	lifetime := time.NewTimer(streamLifetime)
	defer lifetime.Stop()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		for _, ev := range t.Events {
			if ev.Seq > last {
				if !send("task-event", strconv.Itoa(ev.Seq), visibleEvent(ev)) {
					return
				}
				last = ev.Seq
			}
		}
		if t.State != TaskRunning {
			st := streamState{State: t.State, Result: strings.Join(visibleLines(t.Result), "\n"), Ended: when(t.Ended)}
			if send("state", "", st) {
				send("end", "", struct{}{})
			}
			return
		}
		select {
		case <-changed:
		case <-tick.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			continue
		case <-lifetime.C:
			return
		case <-c.closing:
			return
		case <-ctx.Done():
			return
		}
		if t, changed, ok = c.b.WatchTask(ctx, id); !ok {
			return
		}
	}
}

// visibleEvent is ev as the page renders it: cut short, and what a person
// could not see escaped.
func visibleEvent(ev TaskEvent) TaskEvent {
	ev.Text = consent.Visible(short(2000, ev.Text))
	ev.Tool = consent.Visible(ev.Tool)
	ev.Arguments = consent.Visible(short(400, ev.Arguments))
	return ev
}
