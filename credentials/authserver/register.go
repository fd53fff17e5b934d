package authserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/clientmeta"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// Limits of a registration request. Metadata documents of MCP clients are
// a few hundred bytes; the caps bound what one registration can store.
const (
	// maxRegistrationBytes caps the request body.
	maxRegistrationBytes = 16 << 10
	// maxRegistrationRedirectURIs and maxRegistrationRedirectURILength
	// cap redirect_uris.
	maxRegistrationRedirectURIs      = 5
	maxRegistrationRedirectURILength = 512
	// maxInitialAccessTokenLen caps the bearer token before it is hashed.
	maxInitialAccessTokenLen = 1024
	// fullRetryAfter is the Retry-After sent while MaxDynamicClients
	// registrations are kept: unused ones expire over time.
	fullRetryAfter = time.Hour
)

// registrationPolicy is what a registration may ask for.
var registrationPolicy = clientmeta.Policy{
	MaxRedirectURIs:      maxRegistrationRedirectURIs,
	MaxRedirectURILength: maxRegistrationRedirectURILength,
}

// initRegistration fills in the registration defaults and checks them.
func (s *Server) initRegistration() error {
	c := &s.cfg
	if c.RegistrationBurst == 0 {
		c.RegistrationBurst = DefaultRegistrationBurst
	}
	if c.RegistrationInterval <= 0 {
		c.RegistrationInterval = DefaultRegistrationInterval
	}
	if c.MaxDynamicClients == 0 {
		c.MaxDynamicClients = DefaultMaxDynamicClients
	}
	if c.UnusedClientTTL == 0 {
		c.UnusedClientTTL = DefaultUnusedClientTTL
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return errors.New("authserver: TrustedProxies has an invalid prefix")
		}
	}
	if !c.AllowDynamicRegistration {
		return nil
	}
	if c.RegistrationTokenHash != "" {
		if err := userauth.CheckHash(c.RegistrationTokenHash); err != nil {
			return fmt.Errorf("authserver: RegistrationTokenHash: %w", err)
		}
	}
	if c.RegistrationBurst > 0 {
		s.regLimit = newAddrLimiter(c.RegistrationBurst, c.RegistrationInterval, s.now)
	}
	if c.MaxDynamicClients > 0 {
		counter, ok := c.Store.(Counter)
		if !ok {
			return errors.New("authserver: MaxDynamicClients needs a Store that implements Counter")
		}
		s.regCount = counter
	}
	return nil
}

// headerError is an OAuth error sent with response headers
// (WWW-Authenticate, Retry-After).
type headerError struct {
	err    *oauth.Error
	header http.Header
}

func (e *headerError) Error() string { return e.err.Error() }

func (e *headerError) Unwrap() error { return e.err }

func withHeader(oe *oauth.Error, name, value string) *headerError {
	h := http.Header{}
	h.Set(name, value)
	return &headerError{err: oe, header: h}
}

// handleRegister serves dynamic client registration (RFC 7591) for public
// clients (auth method none) and clients with their own keys
// (private_key_jwt with inline jwks). Secrets are never issued.
//
// Registration is limited: per client address by a token bucket (429 with
// Retry-After), in size (the body, redirect_uris), in the number of
// registered clients kept at once (503 with Retry-After), and in time (a
// client that obtains no token within Config.UnusedClientTTL is dropped).
// With Config.RegistrationTokenHash it is closed to holders of the initial
// access token (RFC 7591 §3; 401 invalid_token otherwise).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "the method must be POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	md, err := s.register(r)
	if err != nil {
		var he *headerError
		if errors.As(err, &he) {
			maps.Copy(w.Header(), he.header)
		}
		oe := oauth.AsError(err)
		if oe.Code == oauth.CodeServerError {
			s.log.ErrorContext(r.Context(), "client registration failed", "err", err)
		}
		oauth.WriteError(w, oe)
		return
	}
	oauth.WriteJSON(w, http.StatusCreated, md)
}

func (s *Server) register(r *http.Request) (*clientmeta.Metadata, error) {
	ctx := r.Context()
	// The rate limit comes first, so that nothing else (hashing an
	// initial access token included) can be made to run at will.
	if s.regLimit != nil {
		addr := clientAddr(r, s.cfg.TrustedProxies)
		if ok, wait := s.regLimit.allow(addr); !ok {
			s.log.WarnContext(ctx, "client registration refused: rate limit", "addr", addr.String())
			secs := max(1, int(math.Ceil(wait.Seconds())))
			return nil, withHeader(oauth.Errorf(oauth.CodeTemporarilyUnavailable,
				"too many registrations from this address; retry in %d seconds", secs).WithStatus(http.StatusTooManyRequests),
				"Retry-After", strconv.Itoa(secs))
		}
	}
	if err := s.checkInitialAccessToken(r); err != nil {
		return nil, err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "the content type must be application/json")
	}
	if r.ContentLength > maxRegistrationBytes {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "the request body exceeds %d bytes", maxRegistrationBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRegistrationBytes+1))
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "the request body could not be read")
	}
	if len(body) > maxRegistrationBytes {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "the request body exceeds %d bytes", maxRegistrationBytes)
	}
	md, err := clientmeta.Parse(body, maxRegistrationBytes)
	if err != nil {
		return nil, registrationError(err)
	}
	if md.ClientID != "" || md.ClientSecret != "" {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "client_id and client_secret are assigned by the server")
	}
	if err := registrationPolicy.ValidateRegistration(md); err != nil {
		return nil, registrationError(err)
	}
	if md.JWKSURI != "" {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "jwks_uri is not supported; send jwks inline")
	}
	if md.Scope != "" {
		scopes, err := oauth.ParseScope(md.Scope)
		if err != nil {
			return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "scope is malformed")
		}
		for _, sc := range scopes {
			if !s.scopes[sc] {
				return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "scope %q is not known", sc)
			}
		}
	}
	id, err := randomToken(16)
	if err != nil {
		return nil, err
	}
	md.ClientID = "dyn-" + id
	md.ClientIDIssuedAt = s.now().Unix()
	if _, err := clientFromMetadata(md.ClientID, kindDynamic, md); err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "%s", oauth.AsError(err).Description)
	}

	// Count and register under one lock, so that this process never
	// exceeds the cap (hosts sharing a store may each add the
	// registrations in flight at the moment of counting).
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if s.regCount != nil {
		n, err := s.regCount.Count(ctx, nsClients)
		if err != nil {
			return nil, fmt.Errorf("authserver: count registered clients: %w", err)
		}
		if n >= s.cfg.MaxDynamicClients {
			s.log.WarnContext(ctx, "client registration refused: client limit reached", "clients", n)
			return nil, withHeader(oauth.Errorf(oauth.CodeTemporarilyUnavailable,
				"the server has as many registered clients as it keeps; try again later"),
				"Retry-After", strconv.Itoa(int(fullRetryAfter/time.Second)))
		}
	}
	if err := s.clients.registerClient(ctx, md); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "client registered", "client_id", md.ClientID, "client_name", md.ClientName)
	return md, nil
}

// checkInitialAccessToken enforces Config.RegistrationTokenHash: the
// request must carry the initial access token (RFC 7591 §3) as a bearer
// token (RFC 6750 §2.1). Errors follow RFC 6750 §3: 401 with a Bearer
// challenge, invalid_token for a wrong token.
func (s *Server) checkInitialAccessToken(r *http.Request) error {
	if s.cfg.RegistrationTokenHash == "" {
		return nil
	}
	realm := `Bearer realm="` + s.issuer + `"`
	values := r.Header.Values("Authorization")
	if len(values) > 1 {
		return withHeader(oauth.Errorf(oauth.CodeInvalidRequest, "more than one Authorization header"),
			"WWW-Authenticate", realm+`, error="invalid_request"`)
	}
	scheme, token := "", ""
	if len(values) == 1 {
		scheme, token, _ = strings.Cut(values[0], " ")
		token = strings.TrimLeft(token, " ")
	}
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		// No credentials: the challenge carries no error (RFC 6750 §3.1).
		return withHeader(oauth.Errorf(oauth.CodeInvalidToken, "registration requires an initial access token"),
			"WWW-Authenticate", realm)
	}
	wrong := withHeader(oauth.Errorf(oauth.CodeInvalidToken, "the initial access token is not valid"),
		"WWW-Authenticate", realm+`, error="invalid_token"`)
	if len(token) > maxInitialAccessTokenLen {
		return wrong
	}
	// A token that verified once is recognised by its SHA-256 (it has
	// the entropy of a secret, not of a password), so the slow hash runs
	// only for tokens not seen to be right; the rate limit bounds those.
	sum := sha256.Sum256([]byte(token))
	if last := s.regToken.Load(); last != nil && subtle.ConstantTimeCompare(last[:], sum[:]) == 1 {
		return nil
	}
	ok, err := s.cfg.Users.Limiter().Verify(r.Context(), s.cfg.RegistrationTokenHash, token)
	if errors.Is(err, userauth.ErrBusy) {
		return withHeader(oauth.Errorf(oauth.CodeTemporarilyUnavailable,
			"too many registrations at once; retry shortly"), "Retry-After", "2")
	}
	if err != nil {
		return fmt.Errorf("authserver: verify initial access token: %w", err)
	}
	if !ok {
		s.log.WarnContext(r.Context(), "client registration refused: wrong initial access token")
		return wrong
	}
	s.regToken.Store(&sum)
	return nil
}

func registrationError(err error) error {
	var ce *clientmeta.Error
	if errors.As(err, &ce) {
		return &oauth.Error{Code: ce.Code, Description: ce.Description}
	}
	return oauth.Errorf(oauth.CodeInvalidClientMetadata, "the client metadata is malformed")
}
