package localapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/agenthost/agenthost/credentials/attest"
)

// ErrRefused is returned (wrapped) by a [Client] method when the host
// refused the connection (403): the calling process may not use the admin
// API. The error's text is the host's reason.
var ErrRefused = errors.New("localapi: connection refused")

// Peer holds the credentials of the process at the other end of an admin
// API connection, as the kernel recorded them when it connected
// (SO_PEERCRED, unix(7)). PID is 0 when the process is not visible in the
// host's pid namespace.
type Peer = attest.Peer

// RefuseEvent describes a refused connection.
type RefuseEvent struct {
	// Peer holds the caller's credentials; it is zero when they could
	// not be read.
	Peer Peer
	// Reason says why; its text is the "error" of the 403 response.
	Reason error
}

// peerPolicy decides which processes may use the admin API.
type peerPolicy struct {
	// uid is the only user whose processes are admitted: the host's
	// effective uid.
	uid int
	// check, if set, must accept the peer as well.
	check func(Peer) error
}

// admit returns why p may not use the admin API, or nil.
func (pp peerPolicy) admit(p Peer) error {
	if p.UID != pp.uid {
		return fmt.Errorf("%w: uid %d is not the host's uid %d", ErrRefused, p.UID, pp.uid)
	}
	if p.PID == 0 {
		return fmt.Errorf("%w: the peer process is not visible in the host's pid namespace (pid 0)", ErrRefused)
	}
	if pp.check != nil {
		if err := pp.check(p); err != nil {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	return nil
}

// connKey is the context key of a connection's connState.
type connKey struct{}

// connState is what is known about one admin API connection. The peer is
// read when the connection is accepted; the decision is taken on its first
// request, on the connection's own goroutine, and holds for every later
// request on it.
type connState struct {
	peer    Peer
	readErr error

	once   sync.Once
	denied error
}

// connContext is the http.Server's ConnContext: it reads the peer
// credentials of each accepted connection (a single getsockopt).
func connContext(ctx context.Context, c net.Conn) context.Context {
	p, err := attest.PeerOf(c)
	return context.WithValue(ctx, connKey{}, &connState{peer: p, readErr: err})
}

// guard refuses every request on a connection whose peer may not use the
// admin API with 403 and a JSON {"error"} naming the reason, and closes
// the connection after the response.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs, _ := r.Context().Value(connKey{}).(*connState)
		var denied error
		if cs == nil {
			denied = fmt.Errorf("%w: the connection's peer is unknown", ErrRefused)
		} else {
			cs.once.Do(func() { cs.denied = s.decide(r.Context(), cs) })
			denied = cs.denied
		}
		if denied != nil {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusForbidden, denied.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// decide applies the peer policy to a connection and reports a refusal.
func (s *Server) decide(ctx context.Context, cs *connState) error {
	denied := cs.readErr
	if denied != nil {
		denied = fmt.Errorf("%w: the peer cannot be identified: %w", ErrRefused, denied)
	} else {
		denied = s.policy.admit(cs.peer)
	}
	if denied == nil {
		return nil
	}
	// Debug only: a process looping on connect must not flood the log;
	// OnRefuse may report it louder.
	s.log.DebugContext(ctx, "admin api connection refused", slog.Int("peer_pid", cs.peer.PID),
		slog.Int("peer_uid", cs.peer.UID), slog.String("error", denied.Error()))
	if s.onRefuse != nil {
		s.onRefuse(ctx, RefuseEvent{Peer: cs.peer, Reason: denied})
	}
	return denied
}
