package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

// nsSubjects holds per-subject revocations.
const nsSubjects = "as.subjects"

// subjectRevocation says every credential of a subject issued at or before
// At (Unix seconds) is invalid: access tokens, refresh tokens and sign-in
// sessions.
type subjectRevocation struct {
	At    int64  `json:"at"`
	Cause string `json:"cause,omitempty"`
}

// RevokeSubject invalidates every credential this server issued for the
// user or client subject up to now: access tokens (checked by
// [Server.VerifyAccessToken], introspection and [Server.SubjectRevoked]),
// refresh tokens, and the user's sign-in sessions, which must sign in
// again. Credentials issued later are not affected. It is what a CAEP
// session-revoked or credential-change event triggers. Revoking again moves
// the point forward; it never moves back.
func (s *Server) RevokeSubject(ctx context.Context, subject, cause string) error {
	if subject == "" {
		return errors.New("authserver: revoke subject: empty subject")
	}
	// After the write, whatever its outcome (see revcache.go).
	defer s.revocationWritten()
	at := s.now().Unix()
	// Every credential lives at most this long, so the record may go
	// after it.
	ttl := max(s.cfg.RefreshTokenTTL, s.cfg.AccessTokenTTL, userauth.DefaultSessionTTL) + time.Minute
	for range 5 {
		cur, version, err := getRecord[subjectRevocation](ctx, s.store, nsSubjects, subject, "subject revocation")
		w := Write{TTL: ttl}
		switch {
		case errors.Is(err, ErrNotFound):
			w.IfAbsent = true
		case err != nil:
			return err
		case cur.At >= at:
			return nil
		default:
			w.IfVersion = version
		}
		data, _ := json.Marshal(subjectRevocation{At: at, Cause: cause})
		_, err = s.store.Put(ctx, nsSubjects, subject, data, w)
		if err == nil {
			s.log.InfoContext(ctx, "subject revoked", "subject", subject, "cause", cause)
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("authserver: revoke subject: %w", err)
		}
	}
	return errors.New("authserver: revoke subject: too many concurrent writers")
}

// SubjectRevoked reports whether a credential of subject issued at
// issuedAt was revoked by [Server.RevokeSubject], for resource servers that
// verify this server's tokens locally. A credential issued in the same
// second as the revocation counts as revoked. A subject checked before is
// answered from the revocation cache ([Config.RevocationCache]).
func (s *Server) SubjectRevoked(ctx context.Context, subject string, issuedAt time.Time) (bool, error) {
	a, gen, hit := s.revocations.subject(subject)
	if !hit {
		rec, _, err := getRecord[subjectRevocation](ctx, s.store, nsSubjects, subject, "subject revocation")
		switch {
		case errors.Is(err, ErrNotFound):
			a = subjectAnswer{}
		case err != nil:
			return false, err
		default:
			a = subjectAnswer{at: rec.At, found: true}
		}
		s.revocations.keepSubject(subject, gen, a, s.now())
	}
	return a.found && issuedAt.Unix() <= a.at, nil
}

// errSessionRevoked: the session's user was revoked after signing in.
var errSessionRevoked = errors.New("authserver: the session was revoked")

// session returns the request's sign-in session unless its user was
// revoked since signing in.
func (s *Server) session(ctx context.Context, r *http.Request) (userauth.Session, error) {
	sess, err := s.sessions.Get(r)
	if err != nil {
		return sess, err
	}
	revoked, err := s.SubjectRevoked(ctx, sess.User, sess.AuthTime)
	if err != nil {
		return userauth.Session{}, err
	}
	if revoked {
		return userauth.Session{}, errSessionRevoked
	}
	return sess, nil
}
