package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// Paths of the endpoints [Transmitter.Handler] serves, under BaseURL.
const (
	pathJWKS          = "/ssf/jwks.json"
	pathStreams       = "/ssf/streams"
	pathStatus        = "/ssf/status"
	pathAddSubject    = "/ssf/subjects/add"
	pathRemoveSubject = "/ssf/subjects/remove"
	pathVerify        = "/ssf/verify"
	pathPoll          = "/ssf/poll/"
)

// maxManagementBody caps a management request body; maxPollBody a poll
// request (which may carry many acknowledgements).
const (
	maxManagementBody = 64 << 10
	maxPollBody       = 1 << 20
)

// Handler returns the transmitter's HTTP endpoints: the metadata at
// /.well-known/ssf-configuration (with the issuer's path appended), the
// JWK Set, stream configuration (POST create, GET read or list, PATCH
// update, PUT replace, DELETE), status (GET, POST), add and remove
// subject, verification, and the per-stream poll endpoints.
func (t *Transmitter) Handler() http.Handler { return t.mux }

// MetadataPath is the path at which Handler serves the metadata.
func (t *Transmitter) MetadataPath() string {
	u, _ := url.Parse(t.cfg.Issuer)
	return WellKnownPath + strings.TrimSuffix(u.EscapedPath(), "/")
}

// routes builds the mux; paths that the mux cannot take as literal
// patterns are refused.
func (t *Transmitter) routes() (m *http.ServeMux, err error) {
	for _, p := range []string{t.basePath, t.MetadataPath()} {
		if strings.ContainsAny(p, "{} \t\r\n") {
			return nil, fmt.Errorf("%w: path %q cannot be served", ErrInvalidConfig, p)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("%w: %v", ErrInvalidConfig, p)
		}
	}()
	m = http.NewServeMux()
	p := t.basePath
	m.HandleFunc("GET "+t.MetadataPath(), t.serveMetadata)
	m.HandleFunc("GET "+p+pathJWKS, t.serveJWKS)
	m.HandleFunc("POST "+p+pathStreams, t.manage(t.createStream))
	m.HandleFunc("GET "+p+pathStreams, t.manage(t.readStreams))
	m.HandleFunc("PATCH "+p+pathStreams, t.manage(t.updateStream))
	m.HandleFunc("PUT "+p+pathStreams, t.manage(t.updateStream))
	m.HandleFunc("DELETE "+p+pathStreams, t.manage(t.deleteStream))
	m.HandleFunc("GET "+p+pathStatus, t.manage(t.readStatus))
	m.HandleFunc("POST "+p+pathStatus, t.manage(t.updateStatus))
	m.HandleFunc("POST "+p+pathAddSubject, t.manage(t.addSubject))
	m.HandleFunc("POST "+p+pathRemoveSubject, t.manage(t.removeSubject))
	m.HandleFunc("POST "+p+pathVerify, t.manage(t.verify))
	m.HandleFunc("POST "+p+pathPoll+"{stream_id}", t.manage(t.poll))
	return m, nil
}

// Metadata returns the transmitter metadata the Handler serves.
func (t *Transmitter) Metadata() TransmitterMetadata {
	return TransmitterMetadata{
		SpecVersion:              SpecVersion,
		Issuer:                   t.cfg.Issuer,
		JWKSURI:                  t.jwksURI,
		DeliveryMethodsSupported: []string{DeliveryPush, DeliveryPoll},
		ConfigurationEndpoint:    t.base + pathStreams,
		StatusEndpoint:           t.base + pathStatus,
		AddSubjectEndpoint:       t.base + pathAddSubject,
		RemoveSubjectEndpoint:    t.base + pathRemoveSubject,
		VerificationEndpoint:     t.base + pathVerify,
		AuthorizationSchemes:     slices.Clone(t.cfg.AuthorizationSchemes),
		DefaultSubjects:          t.cfg.DefaultSubjects,
	}
}

func (t *Transmitter) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, t.Metadata())
}

// JWKS returns the JWK Set document of the signing key and the
// published keys.
func (t *Transmitter) JWKS() ([]byte, error) {
	keys := append([]jose.SetKey{{KID: t.cfg.KeyID, Key: t.cfg.Signer.Public(), Alg: string(t.alg), Use: "sig"}}, t.cfg.PublishedKeys...)
	b, err := jose.MarshalKeySet(keys)
	if err != nil {
		return nil, fmt.Errorf("signals: JWK Set: %w", err)
	}
	return b, nil
}

func (t *Transmitter) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	b, err := t.JWKS()
	if err != nil {
		t.log.Error("signals: JWK Set", "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(b)
}

// manage authenticates the caller and recovers from panics.
func (t *Transmitter) manage(h func(w http.ResponseWriter, r *http.Request, client string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				t.log.Error("signals: management handler panicked", "panic", fmt.Sprint(p))
				writeError(w, http.StatusInternalServerError, "server_error", "")
			}
		}()
		client, err := t.cfg.Authorize(r)
		if err != nil || client == "" {
			if errors.Is(err, ErrAccessDenied) {
				writeError(w, http.StatusForbidden, CodeAccessDenied, "client may not manage streams")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer`)
			writeError(w, http.StatusUnauthorized, CodeAuthenticationFailed, "authentication required")
			return
		}
		h(w, r, client)
	}
}

// owned loads stream id for client; another client's stream is reported
// as not found.
func (t *Transmitter) owned(ctx context.Context, id, client string) (Stream, error) {
	if id == "" {
		return Stream{}, fmt.Errorf("%w: no stream_id", ErrStreamNotFound)
	}
	s, err := t.cfg.Store.GetStream(ctx, id)
	if err != nil {
		return Stream{}, err
	}
	if s.Owner != client {
		return Stream{}, fmt.Errorf("%w: %q", ErrStreamNotFound, truncate(id, 64))
	}
	return s, nil
}

// storeError answers a store failure.
func (t *Transmitter) storeError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrStreamNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such stream")
		return
	}
	t.log.Error("signals: stream store", "error", err)
	writeError(w, http.StatusInternalServerError, "server_error", "")
}

// view is the configuration returned to the receiver: the push
// authorization header is never echoed.
func view(s Stream) StreamConfig {
	c := s.clone().Config
	if c.Delivery != nil {
		c.Delivery.AuthorizationHeader = ""
	}
	return c
}

// checkDelivery validates receiver-supplied delivery for stream id and
// fills in the poll endpoint. Nil means poll.
func (t *Transmitter) checkDelivery(d *Delivery, id string) (*Delivery, error) {
	if d == nil {
		d = &Delivery{Method: DeliveryPoll}
	}
	out := *d
	switch out.Method {
	case DeliveryPush:
		if err := checkEndpoint(out.EndpointURL, t.cfg.AllowHTTPPush); err != nil {
			return nil, fmt.Errorf("push endpoint_url must be an absolute https URL")
		}
	case DeliveryPoll:
		out.EndpointURL = t.base + pathPoll + url.PathEscape(id)
		out.AuthorizationHeader = ""
	default:
		return nil, fmt.Errorf("delivery method %q is not supported", truncate(out.Method, 64))
	}
	return &out, nil
}

// delivered is events_delivered: supported ∩ requested.
func (t *Transmitter) delivered(requested []string) []string {
	out := []string{}
	for _, e := range t.cfg.EventsSupported {
		if slices.Contains(requested, e) {
			out = append(out, e)
		}
	}
	return out
}

func (t *Transmitter) audience(client string, requested []string) ([]string, error) {
	if t.cfg.AudienceFor != nil {
		aud, err := t.cfg.AudienceFor(client, requested)
		if err == nil && len(aud) == 0 {
			err = errors.New("no audience")
		}
		return aud, err
	}
	if len(requested) == 0 || (len(requested) == 1 && requested[0] == client) {
		return []string{client}, nil
	}
	return nil, errors.New("aud must be the client id")
}

func (t *Transmitter) createStream(w http.ResponseWriter, r *http.Request, client string) {
	var req StreamConfig
	if !decodeBody(w, r, maxManagementBody, &req) {
		return
	}
	t.mgmtMu.Lock()
	defer t.mgmtMu.Unlock()
	ctx := r.Context()
	if t.cfg.MaxStreamsPerClient > 0 {
		mine, err := t.cfg.Store.ListStreams(ctx, client)
		if err != nil {
			t.storeError(w, err)
			return
		}
		if len(mine) >= t.cfg.MaxStreamsPerClient {
			writeError(w, http.StatusConflict, "conflict", "stream limit reached for this client")
			return
		}
	}
	id := randomID()
	d, err := t.checkDelivery(req.Delivery, id)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error())
		return
	}
	aud, err := t.audience(client, req.Aud)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "aud not allowed: "+err.Error())
		return
	}
	s := Stream{
		Config: StreamConfig{
			StreamID:        id,
			Iss:             t.cfg.Issuer,
			Aud:             aud,
			EventsSupported: slices.Clone(t.cfg.EventsSupported),
			EventsRequested: slices.Clone(req.EventsRequested),
			EventsDelivered: t.delivered(req.EventsRequested),
			Delivery:        d,
			Description:     req.Description,
		},
		Owner:   client,
		Status:  StatusEnabled,
		Created: t.cfg.Now(),
	}
	if t.cfg.MinVerificationInterval > 0 {
		s.Config.MinVerificationInterval = int(t.cfg.MinVerificationInterval / time.Second)
	}
	if err := t.cfg.Store.CreateStream(ctx, s); err != nil {
		t.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, view(s))
}

func (t *Transmitter) readStreams(w http.ResponseWriter, r *http.Request, client string) {
	ctx := r.Context()
	if id := r.URL.Query().Get("stream_id"); id != "" {
		s, err := t.owned(ctx, id, client)
		if err != nil {
			t.storeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, view(s))
		return
	}
	streams, err := t.cfg.Store.ListStreams(ctx, client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	out := make([]StreamConfig, 0, len(streams))
	for _, s := range streams {
		out = append(out, view(s))
	}
	writeJSON(w, http.StatusOK, out)
}

// updateStream handles PATCH (change the receiver-supplied fields given)
// and PUT (replace them). aud is immutable; transmitter-supplied fields
// are ignored.
func (t *Transmitter) updateStream(w http.ResponseWriter, r *http.Request, client string) {
	var req StreamConfig
	if !decodeBody(w, r, maxManagementBody, &req) {
		return
	}
	t.mgmtMu.Lock()
	defer t.mgmtMu.Unlock()
	ctx := r.Context()
	s, err := t.owned(ctx, req.StreamID, client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	if req.Aud != nil && !slices.Equal(req.Aud, s.Config.Aud) {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "aud cannot be changed")
		return
	}
	replace := r.Method == http.MethodPut
	if replace || req.EventsRequested != nil {
		s.Config.EventsRequested = slices.Clone(req.EventsRequested)
		s.Config.EventsDelivered = t.delivered(req.EventsRequested)
	}
	if replace || req.Description != "" {
		s.Config.Description = req.Description
	}
	if replace || req.Delivery != nil {
		d, err := t.checkDelivery(req.Delivery, s.Config.StreamID)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error())
			return
		}
		s.Config.Delivery = d
	}
	if err := t.cfg.Store.UpdateStream(ctx, s); err != nil {
		t.storeError(w, err)
		return
	}
	t.kick(s)
	writeJSON(w, http.StatusOK, view(s))
}

func (t *Transmitter) deleteStream(w http.ResponseWriter, r *http.Request, client string) {
	t.mgmtMu.Lock()
	defer t.mgmtMu.Unlock()
	ctx := r.Context()
	s, err := t.owned(ctx, r.URL.Query().Get("stream_id"), client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	if err := t.cfg.Store.DeleteStream(ctx, s.Config.StreamID); err != nil {
		t.storeError(w, err)
		return
	}
	t.mu.Lock()
	delete(t.queues, s.Config.StreamID)
	t.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (t *Transmitter) readStatus(w http.ResponseWriter, r *http.Request, client string) {
	s, err := t.owned(r.Context(), r.URL.Query().Get("stream_id"), client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, StreamStatus{StreamID: s.Config.StreamID, Status: s.Status, Reason: s.Reason})
}

func (t *Transmitter) updateStatus(w http.ResponseWriter, r *http.Request, client string) {
	var req StreamStatus
	if !decodeBody(w, r, maxManagementBody, &req) {
		return
	}
	if req.Status != StatusEnabled && req.Status != StatusPaused && req.Status != StatusDisabled {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "status must be enabled, paused or disabled")
		return
	}
	t.mgmtMu.Lock()
	defer t.mgmtMu.Unlock()
	s, err := t.owned(r.Context(), req.StreamID, client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	if s, err = t.setStatus(r.Context(), s, req.Status, req.Reason); err != nil {
		t.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, StreamStatus{StreamID: s.Config.StreamID, Status: s.Status, Reason: s.Reason})
}

// SetStreamStatus changes a stream's status on the transmitter's own
// initiative (for example to pause a stream whose receiver misbehaves),
// sending the stream-updated event the change requires.
func (t *Transmitter) SetStreamStatus(ctx context.Context, streamID, status, reason string) error {
	if status != StatusEnabled && status != StatusPaused && status != StatusDisabled {
		return fmt.Errorf("signals: set stream status: %w: status %q", ErrInvalidConfig, status)
	}
	t.mgmtMu.Lock()
	defer t.mgmtMu.Unlock()
	s, err := t.cfg.Store.GetStream(ctx, streamID)
	if err != nil {
		return fmt.Errorf("signals: set stream status: %w", err)
	}
	if _, err := t.setStatus(ctx, s, status, reason); err != nil {
		return fmt.Errorf("signals: set stream status: %w", err)
	}
	return nil
}

// setStatus applies a status change: a stream-updated event is queued
// before pausing or disabling and after re-enabling (SSF 1.0 §8.1.5);
// disabling drops the queued events. t.mgmtMu must be held.
func (t *Transmitter) setStatus(ctx context.Context, s Stream, status, reason string) (Stream, error) {
	old := s.Status
	update := Event{Type: EventStreamUpdated, Status: status, Reason: reason}
	if status != old && status != StatusEnabled {
		if err := t.sendControl(ctx, s, update); err != nil {
			t.log.Warn("signals: stream-updated event not queued", "stream", s.Config.StreamID, "error", err)
		}
	}
	s.Status, s.Reason = status, reason
	if err := t.cfg.Store.UpdateStream(ctx, s); err != nil {
		return s, err
	}
	if status == StatusDisabled {
		t.mu.Lock()
		if q := t.queues[s.Config.StreamID]; q != nil {
			q.items = slices.DeleteFunc(q.items, func(it queued) bool { return !it.control })
		}
		t.mu.Unlock()
	}
	if status != old && status == StatusEnabled {
		if err := t.sendControl(ctx, s, update); err != nil {
			t.log.Warn("signals: stream-updated event not queued", "stream", s.Config.StreamID, "error", err)
		}
	}
	t.kick(s)
	return s, nil
}

func (t *Transmitter) addSubject(w http.ResponseWriter, r *http.Request, client string) {
	t.changeSubjects(w, r, client, http.StatusOK, func(s *Stream, sub Subject) {
		key := sub.String()
		s.Excluded = slices.DeleteFunc(s.Excluded, func(x Subject) bool { return x.String() == key })
		if !slices.ContainsFunc(s.Subjects, func(x Subject) bool { return x.String() == key }) {
			s.Subjects = append(s.Subjects, sub)
		}
	})
}

func (t *Transmitter) removeSubject(w http.ResponseWriter, r *http.Request, client string) {
	t.changeSubjects(w, r, client, http.StatusNoContent, func(s *Stream, sub Subject) {
		key := sub.String()
		s.Subjects = slices.DeleteFunc(s.Subjects, func(x Subject) bool { return x.String() == key })
		if t.cfg.DefaultSubjects == DefaultSubjectsAll && !slices.ContainsFunc(s.Excluded, func(x Subject) bool { return x.String() == key }) {
			s.Excluded = append(s.Excluded, sub)
		}
	})
}

// changeSubjects serves add and remove subject: it reads the request,
// applies change to the caller's stream and stores it, answering ok.
func (t *Transmitter) changeSubjects(w http.ResponseWriter, r *http.Request, client string, ok int, change func(*Stream, Subject)) {
	var req SubjectRequest
	if !decodeBody(w, r, maxManagementBody, &req) {
		return
	}
	if err := req.Subject.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "subject is not a valid subject identifier")
		return
	}
	t.mgmtMu.Lock()
	defer t.mgmtMu.Unlock()
	s, err := t.owned(r.Context(), req.StreamID, client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	change(&s, req.Subject)
	if err := t.cfg.Store.UpdateStream(r.Context(), s); err != nil {
		t.storeError(w, err)
		return
	}
	w.WriteHeader(ok)
}

func (t *Transmitter) verify(w http.ResponseWriter, r *http.Request, client string) {
	var req VerificationRequest
	if !decodeBody(w, r, maxManagementBody, &req) {
		return
	}
	t.mgmtMu.Lock()
	defer t.mgmtMu.Unlock()
	ctx := r.Context()
	s, err := t.owned(ctx, req.StreamID, client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	now := t.cfg.Now()
	if iv := t.cfg.MinVerificationInterval; iv > 0 && !s.LastVerification.IsZero() && now.Sub(s.LastVerification) < iv {
		wait := iv - now.Sub(s.LastVerification)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, "too_many_requests", "verification requested too soon")
		return
	}
	s.LastVerification = now
	if err := t.cfg.Store.UpdateStream(ctx, s); err != nil {
		t.storeError(w, err)
		return
	}
	if err := t.sendControl(ctx, s, Event{Type: EventVerification, State: req.State}); err != nil {
		t.log.Error("signals: verification event not queued", "stream", s.Config.StreamID, "error", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// poll is the RFC 8936 poll endpoint of one stream: it removes the
// acknowledged SETs and those reported in setErrs (recording the
// errors), then returns up to maxEvents queued SETs, holding the request
// up to LongPollMax when none is queued and returnImmediately is false.
// Unacknowledged SETs are returned again on later polls.
func (t *Transmitter) poll(w http.ResponseWriter, r *http.Request, client string) {
	id := r.PathValue("stream_id")
	var req PollRequest
	if !decodeBody(w, r, maxPollBody, &req) {
		return
	}
	ctx := r.Context()
	s, err := t.owned(ctx, id, client)
	if err != nil {
		t.storeError(w, err)
		return
	}
	if isPush(s) {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "stream does not use poll delivery")
		return
	}
	maxEvents := t.cfg.MaxPollEvents
	if req.MaxEvents != nil {
		if *req.MaxEvents < 0 {
			writeError(w, http.StatusBadRequest, CodeInvalidRequest, "maxEvents must not be negative")
			return
		}
		maxEvents = min(*req.MaxEvents, t.cfg.MaxPollEvents)
	}

	t.mu.Lock()
	q := t.queueFor(id)
	for _, jti := range req.Ack {
		if q.remove(jti) {
			t.acked.Add(1)
		}
	}
	for jti, e := range req.SetErrs {
		if q.remove(jti) {
			t.failed.Add(1)
			q.recordErr(jti, ErrorBody{Err: truncate(e.Err, 64), Description: truncate(e.Description, 256)})
			t.log.Warn("signals: receiver reported a SET error", "stream", id, "jti", jti, "err", truncate(e.Err, 64))
		}
	}
	sets, more, notify := q.collect(s.Status, maxEvents)
	t.mu.Unlock()

	if len(sets) == 0 && !req.ReturnImmediately && maxEvents > 0 {
		timer := time.NewTimer(t.cfg.LongPollMax)
		select {
		case <-notify:
		case <-timer.C:
		case <-ctx.Done():
		case <-t.ctx.Done():
		}
		timer.Stop()
		if cur, err := t.cfg.Store.GetStream(ctx, id); err == nil {
			s = cur
		}
		t.mu.Lock()
		if q := t.queues[id]; q != nil {
			sets, more, _ = q.collect(s.Status, maxEvents)
		}
		t.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, PollResponse{Sets: sets, MoreAvailable: more})
}

// collect returns up to n SETs deliverable under status, whether more
// are waiting, and the channel closed on the next enqueue. t.mu must be
// held.
func (q *queue) collect(status string, n int) (map[string]string, bool, <-chan struct{}) {
	if status == StatusDisabled {
		q.items = slices.DeleteFunc(q.items, func(it queued) bool { return !it.control })
	}
	sets := make(map[string]string)
	more := false
	for _, it := range q.items {
		if status != StatusEnabled && !it.control {
			continue
		}
		if len(sets) >= n {
			more = true
			break
		}
		sets[it.jti] = it.set
	}
	return sets, more, q.notify
}

// decodeBody decodes a JSON request body of at most limit bytes into v,
// answering 400 when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "request body is not valid JSON of the expected shape")
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, "trailing data after the JSON body")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes {"err","description"}, the RFC 8935 error shape,
// which the management endpoints reuse.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeSETError(w, status, code, desc)
}
