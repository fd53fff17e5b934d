package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// assertionLeeway is the clock skew allowed on assertions.
const assertionLeeway = 30 * time.Second

// authenticated is a client that proved who it is at an endpoint.
type authenticated struct {
	*client
	// Method is how it authenticated.
	Method string
	// CertThumbprint is the x5t#S256 of the client certificate under
	// tls_client_auth.
	CertThumbprint string
}

// errInvalidClient is the generic failure: RFC 6749 §5.2 wants 401 and,
// where the client tried HTTP Basic, a Basic challenge.
func invalidClient(format string, args ...any) *oauth.Error {
	return oauth.Errorf(oauth.CodeInvalidClient, format, args...)
}

// authenticateClient authenticates the client of a token, introspection
// or revocation request (RFC 6749 §2.3, RFC 7523 §2.2, RFC 8705 §2, OAuth
// SPIFFE client authentication). Exactly one method may be used.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, f oauth.Form) (*authenticated, error) {
	clientID, err := f.Get("client_id")
	if err != nil {
		return nil, err
	}
	secret, err := f.Get("client_secret")
	if err != nil {
		return nil, err
	}
	assertionType, err := f.Get("client_assertion_type")
	if err != nil {
		return nil, err
	}
	assertion, err := f.Get("client_assertion")
	if err != nil {
		return nil, err
	}
	basicID, basicSecret, hasBasic, err := basicAuth(r)
	if err != nil {
		return nil, err
	}
	hasCert := r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && s.cfg.ClientCertificateAuthorities != nil

	methods := 0
	for _, used := range []bool{hasBasic, secret != "", assertion != "" || assertionType != ""} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "more than one client authentication method was used")
	}

	switch {
	case hasBasic:
		if clientID != "" && clientID != basicID {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "client_id does not match the Authorization header")
		}
		return s.authSecret(ctx, basicID, basicSecret, oauth.AuthClientSecretBasic)
	case secret != "":
		if clientID == "" {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "parameter client_id is missing")
		}
		return s.authSecret(ctx, clientID, secret, oauth.AuthClientSecretPost)
	case assertion != "" || assertionType != "":
		if assertion == "" || assertionType == "" {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "client_assertion and client_assertion_type go together")
		}
		return s.authAssertion(ctx, clientID, assertionType, assertion)
	case hasCert:
		return s.authCertificate(ctx, r, clientID)
	case clientID != "":
		c, err := s.clients.lookup(ctx, clientID)
		if err != nil {
			return nil, err
		}
		if !c.public() {
			return nil, invalidClient("the client must authenticate")
		}
		return &authenticated{client: c, Method: oauth.AuthNone}, nil
	default:
		return nil, invalidClient("no client authentication")
	}
}

// basicAuth parses HTTP Basic credentials, whose parts are form-encoded
// (RFC 6749 §2.3.1).
func basicAuth(r *http.Request) (id, secret string, ok bool, err error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", "", false, nil
	}
	if len(h) > 1 {
		return "", "", false, oauth.Errorf(oauth.CodeInvalidRequest, "more than one Authorization header")
	}
	scheme, rest, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Basic") {
		// Bearer or DPoP on a token endpoint is not client auth.
		return "", "", false, invalidClient("unsupported Authorization scheme")
	}
	raw, decErr := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if decErr != nil {
		return "", "", false, invalidClient("malformed Basic credentials").WithStatus(http.StatusUnauthorized)
	}
	u, p, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false, invalidClient("malformed Basic credentials")
	}
	if id, err = url.QueryUnescape(u); err != nil {
		return "", "", false, invalidClient("malformed Basic credentials")
	}
	if secret, err = url.QueryUnescape(p); err != nil {
		return "", "", false, invalidClient("malformed Basic credentials")
	}
	if id == "" {
		return "", "", false, invalidClient("malformed Basic credentials")
	}
	return id, secret, true, nil
}

func (s *Server) authSecret(ctx context.Context, id, secret, method string) (*authenticated, error) {
	c, err := s.clients.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Kind == kindAgent {
		return nil, invalidClient("agents cannot authenticate with a secret")
	}
	if c.public() && secret == "" && method == oauth.AuthClientSecretBasic {
		// Basic with an empty password only names a public client (RFC
		// 6749 §2.3.1 form); libraries send it before falling back to
		// client_id in the body.
		return &authenticated{client: c, Method: oauth.AuthNone}, nil
	}
	if c.AuthMethod != method {
		return nil, invalidClient("the client is registered for %s", c.AuthMethod)
	}
	// The same bounded pool as sign-in passwords: each argon2id check takes
	// 19 MiB, so a flood of client authentications must wait or be turned
	// away rather than exhaust memory.
	ok, err := s.cfg.Users.Limiter().Verify(ctx, c.SecretHash, secret)
	if errors.Is(err, userauth.ErrBusy) {
		return nil, withHeader(oauth.Errorf(oauth.CodeTemporarilyUnavailable,
			"too many client authentications at once; retry shortly"), "Retry-After", "2")
	}
	if err != nil {
		return nil, fmt.Errorf("authserver: client %q secret hash: %w", c.ID, err)
	}
	if !ok {
		return nil, invalidClient("client authentication failed")
	}
	return &authenticated{client: c, Method: method}, nil
}

// unverifiedIssuer reads iss from a JWS payload before its signature is
// checked, only to pick the keys to check it with. A JWT-SVID has no iss;
// its SPIFFE ID sub names the client instead.
func unverifiedIssuer(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	if c.Iss == "" && strings.HasPrefix(c.Sub, "spiffe://") {
		return c.Sub, nil
	}
	return c.Iss, nil
}

func (s *Server) authAssertion(ctx context.Context, clientID, assertionType, assertion string) (*authenticated, error) {
	switch assertionType {
	case oauth.AssertionJWTSPIFFE:
		return s.authJWTSVID(ctx, clientID, assertion, oauth.AuthSPIFFEJWT)
	case oauth.AssertionJWTBearer:
	default:
		return nil, invalidClient("unsupported client_assertion_type")
	}
	iss, err := unverifiedIssuer(assertion)
	if err != nil || iss == "" {
		return nil, invalidClient("the client assertion is malformed")
	}
	if clientID != "" && clientID != iss {
		return nil, invalidClient("the client assertion was issued by another client")
	}
	if s.federatedID(iss) {
		// A workload of a federated trust domain: its private_key_jwt
		// is a JWT-SVID of its domain, as an agent's is.
		return s.authJWTSVID(ctx, iss, assertion, oauth.AuthPrivateKeyJWT)
	}
	c, err := s.clients.lookup(ctx, iss)
	if err != nil {
		return nil, err
	}
	if c.Kind == kindAgent {
		// An agent's private_key_jwt is a JWT-SVID: its keys are the
		// trust bundle's JWT authorities.
		return s.authJWTSVID(ctx, iss, assertion, oauth.AuthPrivateKeyJWT)
	}
	if c.AuthMethod != oauth.AuthPrivateKeyJWT {
		return nil, invalidClient("the client is registered for %s", c.AuthMethod)
	}
	t, err := jose.Verify(ctx, assertion, jose.VerifyOptions{
		Types:           []jose.Typ{jose.TypJWT},
		AllowMissingTyp: true,
		Keys:            jose.StaticKeys(c.Keys),
		Issuer:          c.ID,
		Audience:        s.issuer,
		RequireSubject:  true,
		Now:             s.now,
		Leeway:          assertionLeeway,
	})
	if err != nil {
		return nil, invalidClient("the client assertion is invalid: %s", joseReason(err))
	}
	if t.Subject != c.ID {
		return nil, invalidClient("the client assertion's sub is not the client")
	}
	if err := s.checkAssertion(ctx, c.ID, t.Audience, t.ID, t.ExpiresAt); err != nil {
		return nil, err
	}
	return &authenticated{client: c, Method: oauth.AuthPrivateKeyJWT}, nil
}

// authJWTSVID authenticates an agent, or a workload of a federated trust
// domain that Config.FederatedClients admits, by a JWT-SVID whose sole
// audience is the issuer (OAuth SPIFFE client authentication; RFC
// 7523bis). The SVID's sub, read before anything is verified, only picks
// the validator: the trust domain's own (Config.SVIDs), or
// Config.FederatedSVIDs for another domain, whose answer must then be a
// workload of another domain.
func (s *Server) authJWTSVID(ctx context.Context, clientID, assertion, method string) (*authenticated, error) {
	validator, federated := s.cfg.SVIDs, false
	if _, _, sub, err := peekJWT(assertion); err == nil && s.federatedID(sub) {
		validator, federated = s.cfg.FederatedSVIDs, true
	}
	if validator == nil {
		return nil, invalidClient("SPIFFE client authentication is not available")
	}
	id, claims, err := validator.ValidateJWTSVID(ctx, assertion, s.issuer)
	if err != nil {
		return nil, invalidClient("the JWT-SVID is invalid: %s", joseReason(err))
	}
	if clientID != "" && clientID != id.String() {
		return nil, invalidClient("client_id is not the JWT-SVID's subject")
	}
	var c *client
	if federated {
		if c = s.federatedClient(id); c == nil {
			return nil, invalidClient("the JWT-SVID's subject is not a client admitted from trust domain %q", truncate(id.TrustDomain().Name(), 80))
		}
	} else {
		if c, err = s.clients.lookup(ctx, id.String()); err != nil {
			return nil, err
		}
		if c.Kind != kindAgent {
			return nil, invalidClient("the JWT-SVID's subject is not a registered agent")
		}
	}
	// An SVID issued before its workload's identity was revoked (the
	// agent was quarantined) is refused until it expires.
	iat, _ := claims["iat"].(float64)
	if revoked, err := s.SubjectRevoked(ctx, c.ID, time.Unix(int64(iat), 0)); err != nil {
		return nil, err
	} else if revoked {
		return nil, invalidClient("the JWT-SVID was issued before its workload's credentials were revoked")
	}
	if method == oauth.AuthPrivateKeyJWT {
		if iss, ok := claims["iss"].(string); ok && iss != c.ID {
			return nil, invalidClient("the client assertion's iss is not the client")
		}
	}
	aud := audienceOf(claims["aud"])
	jti, _ := claims["jti"].(string)
	exp, _ := claims["exp"].(float64)
	if err := s.checkAssertion(ctx, c.ID, aud, jti, time.Unix(int64(exp), 0)); err != nil {
		return nil, err
	}
	return &authenticated{client: c, Method: method}, nil
}

func audienceOf(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// checkAssertion applies the rules every client assertion shares: the
// issuer as the sole audience, a bounded lifetime, and a jti used once.
func (s *Server) checkAssertion(ctx context.Context, clientID string, aud []string, jti string, exp time.Time) error {
	if len(aud) != 1 || aud[0] != s.issuer {
		return invalidClient("the assertion's audience must be the issuer alone")
	}
	if exp.Sub(s.now()) > MaxAssertionLifetime {
		return invalidClient("the assertion expires too far in the future")
	}
	if jti == "" {
		return invalidClient("the assertion has no jti")
	}
	if err := s.remember(ctx, "client:"+clientID+":"+jti, exp.Add(assertionLeeway)); err != nil {
		if errors.Is(err, dpop.ErrReplay) {
			return invalidClient("the assertion was already used")
		}
		return err
	}
	return nil
}

// remember records key in the replay cache until until; it fails with
// dpop.ErrReplay when key is already there. It implements
// dpop.ReplayCache.
func (s *Server) remember(ctx context.Context, key string, until time.Time) error {
	ttl := until.Sub(s.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	sum := sha256.Sum256([]byte(key))
	_, err := s.store.Put(ctx, nsReplay, base64.RawURLEncoding.EncodeToString(sum[:]), []byte{1}, Write{IfAbsent: true, TTL: ttl})
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("authserver: %w", dpop.ErrReplay)
	}
	if err != nil {
		return fmt.Errorf("authserver: replay cache: %w", err)
	}
	return nil
}

type replayCache struct{ s *Server }

func (r replayCache) Remember(ctx context.Context, key string, until time.Time) error {
	return r.s.remember(ctx, "dpop:"+key, until)
}

// authCertificate authenticates an agent by its X.509-SVID over mutual
// TLS (RFC 8705 §2.1, OAuth SPIFFE client authentication): the chain must
// verify against the trust bundle's X.509 authorities (never the system
// roots), the leaf must be an end-entity certificate with exactly one URI
// SAN, and that SPIFFE ID must be the client_id of a hosted agent.
func (s *Server) authCertificate(ctx context.Context, r *http.Request, clientID string) (*authenticated, error) {
	if clientID == "" {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "parameter client_id is missing")
	}
	certs := r.TLS.PeerCertificates
	leaf := certs[0]
	roots := x509.NewCertPool()
	for _, c := range s.cfg.ClientCertificateAuthorities() {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: s.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, invalidClient("the client certificate is not issued by the trust domain")
	}
	if leaf.IsCA || len(leaf.URIs) != 1 || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, invalidClient("the client certificate is not an X.509-SVID")
	}
	id, err := spiffeid.FromURI(leaf.URIs[0])
	if err != nil || id.String() != clientID {
		return nil, invalidClient("the client certificate does not name the client")
	}
	c, err := s.clients.lookup(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c.Kind != kindAgent {
		return nil, invalidClient("only agents authenticate with certificates")
	}
	sum := sha256.Sum256(leaf.Raw)
	return &authenticated{client: c, Method: oauth.AuthTLSClient, CertThumbprint: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// joseReason turns a verification error into a short reason safe to send.
func joseReason(err error) string {
	for _, e := range []struct {
		err    error
		reason string
	}{
		{jose.ErrExpired, "expired"},
		{jose.ErrNotYetValid, "not yet valid"},
		{jose.ErrIssuedInFuture, "issued in the future"},
		{jose.ErrWrongType, "wrong typ"},
		{jose.ErrAlgorithm, "algorithm not allowed"},
		{jose.ErrAudience, "wrong audience"},
		{jose.ErrIssuer, "wrong issuer"},
		{jose.ErrInvalidSignature, "bad signature"},
		{jose.ErrUnknownKey, "unknown key"},
		{jose.ErrMissingClaim, "a required claim is missing"},
		{jose.ErrHeader, "header parameter not allowed"},
		{jose.ErrMalformed, "malformed"},
	} {
		if errors.Is(err, e.err) {
			return e.reason
		}
	}
	return "rejected"
}
