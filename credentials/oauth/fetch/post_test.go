package fetch

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPost(t *testing.T) {
	var redirected atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /notify", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" ||
			string(body) != `{"auth_req_id":"x"}` {
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/notify", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/redirected", func(http.ResponseWriter, *http.Request) { redirected.Add(1) })
	mux.HandleFunc("POST /same-origin-redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redirected", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("POST /big", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 100)))
	})
	stop := make(chan struct{})
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })

	f := New(Config{AllowHTTP: true, AllowPrivate: true, MaxBytes: 50, Timeout: time.Second})
	header := http.Header{"Authorization": {"Bearer tok"}}
	body := []byte(`{"auth_req_id":"x"}`)
	tests := []struct {
		name string
		path string
		want error
	}{
		{"delivered", "/notify", nil},
		{"redirect refused", "/redirect", ErrRedirect},
		{"same-origin redirect refused too", "/same-origin-redirect", ErrRedirect},
		{"body over the cap", "/big", ErrTooLarge},
		{"timeout", "/slow", ErrTimeout},
		{"status outside 2xx", "/missing", ErrStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := f.Post(t.Context(), srv.URL+tt.path, "application/json", header, body)
			if tt.want == nil {
				if err != nil || resp.Status != http.StatusNoContent {
					t.Fatalf("Post: %v, %+v", err, resp)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v: want %v", err, tt.want)
			}
		})
	}
	if n := redirected.Load(); n != 0 {
		t.Fatalf("a redirect was followed %d times", n)
	}
	// Without AllowPrivate the loopback test server is refused before
	// anything is sent.
	if _, err := New(Config{AllowHTTP: true}).Post(t.Context(), srv.URL+"/notify", "application/json", header, body); !errors.Is(err, ErrPrivateAddress) {
		t.Fatalf("loopback without AllowPrivate: %v", err)
	}
	if _, err := f.Post(t.Context(), "ftp://example.org/x", "application/json", header, body); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("ftp URL: %v", err)
	}
}
