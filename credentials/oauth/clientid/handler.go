package clientid

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Handler serves, for GET and HEAD, the client ID metadata document of
// every workload at the path of its MetadataURL and its JWK Set at the
// path of its JWKSURI, as application/json with Cache-Control public and
// a short max-age (Config.MaxAge). Any other path is 404, any other
// method 405. Requests are matched on their escaped path alone: mount the
// handler where requests keep their full path (at the root of the origin
// the URLs name, or under a prefix pattern without stripping it).
func (m *Manager) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.RLock()
		rt, ok := m.paths[r.URL.EscapedPath()]
		m.mu.RUnlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		m.serve(w, r, rt)
	})
}

// JWKSHandler serves, for GET and HEAD, the JWK Set of the workload named
// workload on any path, as [Manager.Handler] does; 404 while the Manager
// does not hold that workload.
func (m *Manager) JWKSHandler(workload string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, route{workload: workload, jwks: true})
	})
}

func (m *Manager) serve(w http.ResponseWriter, r *http.Request, rt route) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := m.body(r.Context(), rt)
	if errors.Is(err, ErrUnknownWorkload) || errors.Is(err, ErrConfig) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		m.log.ErrorContext(r.Context(), "clientid: cannot serve a workload's client metadata",
			attrWorkload, rt.workload, attrErr, err.Error())
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(m.maxAge.Seconds())))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (m *Manager) body(ctx context.Context, rt route) ([]byte, error) {
	if rt.jwks {
		return m.JWKS(ctx, rt.workload)
	}
	d, err := m.Document(ctx, rt.workload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(d)
}
