package authserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// dpopAlgorithms are the DPoP proof algorithms accepted and advertised.
var dpopAlgorithms = []jose.Alg{jose.ES256, jose.ES384, jose.EdDSA, jose.PS256, jose.RS256}

// checkIssuer validates an issuer identifier (RFC 8414 §2): https, or
// http on a loopback host; no query or fragment. A trailing slash is
// removed.
func checkIssuer(iss string) (string, error) {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("authserver: issuer %q is not an absolute URL", iss)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(iss, "#") {
		return "", fmt.Errorf("authserver: issuer %q has a query or fragment", iss)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("authserver: issuer %q must be https (http is only for loopback hosts)", iss)
		}
	default:
		return "", fmt.Errorf("authserver: issuer %q must be an https URL", iss)
	}
	return strings.TrimSuffix(iss, "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkResourceURI checks a resource indicator (RFC 8707 §2): an absolute
// URI without a fragment.
func checkResourceURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return errors.New("is not an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("has a fragment")
	}
	return nil
}

// redirectPortValid reports whether an http or https redirect URI has no
// port or a port from 1 to 65535 (oauth.ValidPort). Other URIs, and
// ones that do not parse, are left to exact matching.
func redirectPortValid(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return true
	}
	return oauth.ValidPort(u)
}

func (s *Server) scopeList() []string {
	out := make([]string, 0, len(s.scopes))
	for sc := range s.scopes {
		out = append(out, sc)
	}
	sort.Strings(out)
	return out
}

func algNames(algs []jose.Alg) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

func without(list []string, drop string) []string {
	var out []string
	for _, v := range list {
		if v != drop {
			out = append(out, v)
		}
	}
	return out
}

// origin is the scheme and authority of the issuer; request paths are
// appended to it to rebuild the URL a client addressed.
func (s *Server) origin() string {
	u, _ := url.Parse(s.issuer)
	return u.Scheme + "://" + u.Host
}

// secret returns the named server secret, creating it on first use. All
// hosts sharing the store share it.
func (s *Server) secret(ctx context.Context, name string) ([]byte, error) {
	for range 3 {
		v, _, err := s.store.Get(ctx, nsKeys, name)
		if err == nil {
			if len(v) != 32 {
				return nil, fmt.Errorf("authserver: secret %q is corrupt", name)
			}
			return v, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("authserver: load secret %q: %w", name, err)
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		_, err = s.store.Put(ctx, nsKeys, name, b, Write{IfAbsent: true})
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("authserver: save secret %q: %w", name, err)
		}
	}
	return nil, fmt.Errorf("authserver: secret %q: too many concurrent writers", name)
}

func (s *Server) initSessions(ctx context.Context) error {
	if s.cfg.Users == nil {
		return nil
	}
	key, err := s.secret(ctx, "session")
	if err != nil {
		return err
	}
	s.sessions, err = userauth.NewSessions(userauth.SessionConfig{Key: key, Secure: s.secure, Now: s.now})
	if err != nil {
		return fmt.Errorf("authserver: sessions: %w", err)
	}
	return nil
}

func (s *Server) initDPoP(ctx context.Context) error {
	cfg := dpop.VerifierConfig{Replay: replayCache{s}, Algorithms: dpopAlgorithms, Now: s.now}
	if s.cfg.RequireDPoPNonce {
		key, err := s.secret(ctx, "dpop-nonce")
		if err != nil {
			return err
		}
		n, err := dpop.NewHMACNonces(key, 0, s.now)
		if err != nil {
			return fmt.Errorf("authserver: dpop nonces: %w", err)
		}
		s.nonces = n
		cfg.Nonces = n
	}
	v, err := dpop.NewVerifier(cfg)
	if err != nil {
		return fmt.Errorf("authserver: dpop: %w", err)
	}
	s.dpop = v
	return nil
}

// setDPoPNonce sends a fresh DPoP nonce (RFC 9449 §8.1).
func (s *Server) setDPoPNonce(ctx context.Context, w http.ResponseWriter) {
	if s.nonces == nil {
		return
	}
	n, err := s.nonces.Nonce(ctx)
	if err != nil {
		s.log.Error("dpop nonce", "err", err)
		return
	}
	w.Header().Set("DPoP-Nonce", n)
}
