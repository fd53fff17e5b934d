package host

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Paths served on the host's HTTP listener.
const (
	// PathHealth answers 200 with {"status":"ok"} while the host serves,
	// from before its agents run; PathReady says when they do.
	PathHealth = "/healthz"
	// PathSPIFFEBundle serves the trust domain's bundle in the SPIFFE
	// federation format (SPIFFE Trust Domain and Bundle §4), so that another
	// trust domain can federate with this one.
	PathSPIFFEBundle = "/spiffe/bundle"
)

// shutdownGrace bounds how long in-flight requests may take once the host is
// asked to stop; the whole host stops within 5 s of SIGINT/SIGTERM.
const shutdownGrace = 3 * time.Second

type httpServer struct {
	srv *http.Server
	ln  net.Listener
	// tls serves HTTPS: with certFile and keyFile, or with the
	// certificates srv.TLSConfig gives (the host's SVID).
	tls      bool
	certFile string
	keyFile  string
	log      *slog.Logger
}

// listenHTTP binds addr now, so that a busy port is reported before anything
// else starts, and returns a server ready to Run.
// With tlsOn and no files, the caller sets srv.TLSConfig's certificates.
func listenHTTP(addr string, handler http.Handler, tlsOn bool, certFile, keyFile string, log *slog.Logger) (*httpServer, error) {
	if !tlsOn && !isLoopbackAddr(addr) {
		// Config validation refuses this too; checking here as well keeps
		// the invariant if the host is built from a config in code.
		return nil, fmt.Errorf("host: refusing to listen on %s without TLS: configure listen.tls or bind a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("host: listen on %s: %w", addr, err)
	}
	s := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if tlsOn {
		s.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &httpServer{srv: s, ln: ln, tls: tlsOn, certFile: certFile, keyFile: keyFile, log: log}, nil
}

// Addr is the bound address (useful when the configured port was 0).
func (h *httpServer) Addr() string { return h.ln.Addr().String() }

func (h *httpServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		var err error
		if h.tls {
			err = h.srv.ServeTLS(h.ln, h.certFile, h.keyFile)
		} else {
			err = h.srv.Serve(h.ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("host: http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := h.srv.Shutdown(sctx); err != nil {
		h.log.WarnContext(ctx, "http shutdown incomplete, closing connections", slog.Any("error", err))
		_ = h.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("host: http server: %w", err)
	}
	return nil
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// storePingTimeout bounds /healthz's check of a database store.
const storePingTimeout = 2 * time.Second

// handleHealth answers 200 {"status":"ok"} while the host serves, or 503
// {"status":"unavailable","store":…} when its database does not answer.
func (h *Host) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if h.storePing != nil {
		ctx, cancel := context.WithTimeout(r.Context(), storePingTimeout)
		err := h.storePing(ctx)
		cancel()
		if err != nil {
			h.log.WarnContext(r.Context(), "health: the store does not answer", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "store": "the database does not answer"})
			return
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// withRecover turns a panic in a handler into a plain 500 without internals
// and logs it; the listener keeps serving.
func withRecover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "http handler panic", slog.String("path", r.URL.Path), slog.Any("panic", v))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
