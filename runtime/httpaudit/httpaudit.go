package httpaudit

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// Config configures [New].
type Config struct {
	// Auditor takes the records of refused requests. Required.
	Auditor mediator.Auditor
	// Now is the records' clock; nil means time.Now.
	Now func() time.Time
	// Logger is told when a record could not be written; nil discards.
	Logger *slog.Logger
}

// Denials records refused requests. It is safe for concurrent use.
type Denials struct {
	audit mediator.Auditor
	now   func() time.Time
	log   *slog.Logger
}

// New checks cfg and returns the Denials it describes.
func New(cfg Config) (*Denials, error) {
	if cfg.Auditor == nil {
		return nil, errors.New("httpaudit: Auditor is required")
	}
	d := &Denials{audit: cfg.Auditor, now: cfg.Now, log: cfg.Logger}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Wrap records every request to next answered with a 4xx or 5xx as a
// denial of action on the resource resourceOf names, with the status and
// the OAuth or WIMSE error code (policy "oauth", outcome "denied").
func (d *Denials) Wrap(action string, resourceOf func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status < 400 {
			return
		}
		reason := http.StatusText(rec.status)
		if rec.reason != "" {
			reason += ": " + rec.reason
		}
		if ch := w.Header().Get("WWW-Authenticate"); ch != "" {
			if cs, err := oauth.ParseChallenges([]string{ch}); err == nil && len(cs) > 0 && cs[0].Param("error") != "" {
				reason = cs[0].Param("error")
			}
		}
		if err := d.audit.Record(r.Context(), mediator.Record{
			Time: d.now().UTC(), Action: action, Resource: resourceOf(r), Decision: "deny",
			Policy: "oauth", Reason: fmt.Sprintf("%d %s", rec.status, reason), Outcome: "denied",
		}); err != nil {
			d.log.Error("audit of a denied request failed", "action", action, "err", err)
		}
	})
}

// SetReason tells the [Denials.Wrap] around w why the request is refused;
// elsewhere it does nothing. The reason must hold no token.
func SetReason(w http.ResponseWriter, reason string) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.reason = reason
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	// reason, when a handler inside sets it (SetReason), says why the
	// request was refused, for the audit record.
	reason string
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets streamed (SSE) responses through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
