package userauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	// DefaultCookieName is the session cookie name when
	// [SessionConfig.CookieName] is empty.
	DefaultCookieName = "agenthost_session"
	// DefaultSessionTTL is the session lifetime when [SessionConfig.TTL]
	// is zero.
	DefaultSessionTTL = 8 * time.Hour

	// hostPrefix is the cookie name prefix that requires Secure, Path=/
	// and no Domain (RFC 6265bis §4.1.3.2).
	hostPrefix = "__Host-"
	// sessionKeyLen is the length of SessionConfig.Key.
	sessionKeyLen = 32
	// maxCookieValue bounds a cookie value before it is decoded; a sealed
	// session is a few hundred bytes.
	maxCookieValue = 4096
	// csrfLen is the length of the random CSRF cookie value in bytes.
	csrfLen = 32
	// idLen is the length of a random session ID in bytes.
	idLen = 16
)

// Labels for deriving the sealing and CSRF keys from SessionConfig.Key.
const (
	labelSeal        = "agenthost userauth session seal v1"
	labelCSRF        = "agenthost userauth csrf v1"
	labelSessionCSRF = "agenthost userauth session csrf v1"
)

// SessionConfig configures [NewSessions].
type SessionConfig struct {
	// Key seals session cookies and keys the CSRF tokens. It must be 32
	// random bytes and stay the same across restarts and replicas, or
	// every browser is signed out.
	Key []byte
	// CookieName is the session cookie name; default
	// [DefaultCookieName]. The CSRF cookie is named CookieName + "_csrf".
	CookieName string
	// Secure marks the cookies Secure and prefixes their names with
	// "__Host-". Set it when the issuer is https.
	Secure bool
	// TTL is how long a session lasts after sign-in; default
	// [DefaultSessionTTL]. It must be at least a second.
	TTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Session is a signed-in browser.
type Session struct {
	// ID is a random identifier of this session.
	ID string
	// User is the signed-in user's name.
	User string
	// AuthTime is when the user signed in, to the second.
	AuthTime time.Time
	// Expires is when the session ends, to the second.
	Expires time.Time
}

// sealedSession is the JSON sealed in the session cookie.
type sealedSession struct {
	ID       string `json:"id"`
	User     string `json:"sub"`
	AuthTime int64  `json:"auth_time"`
	Expires  int64  `json:"exp"`
}

// Sessions issues and reads session and CSRF cookies. It is safe for
// concurrent use.
type Sessions struct {
	aead        cipher.AEAD
	csrfKey     []byte
	sessCSRFKey []byte
	name        string
	csrfName    string
	secure      bool
	ttl         time.Duration
	now         func() time.Time
	additional  []byte
}

// NewSessions checks cfg and returns a Sessions.
func NewSessions(cfg SessionConfig) (*Sessions, error) {
	if len(cfg.Key) != sessionKeyLen {
		return nil, fmt.Errorf("userauth: session key is %d bytes; want %d", len(cfg.Key), sessionKeyLen)
	}
	name := cfg.CookieName
	if name == "" {
		name = DefaultCookieName
	}
	if err := checkCookieName(name); err != nil {
		return nil, err
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("userauth: session TTL %v is shorter than a second", ttl)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	sealKey, err := hkdf.Key(sha256.New, cfg.Key, nil, labelSeal, 32)
	if err != nil {
		return nil, fmt.Errorf("userauth: derive session key: %w", err)
	}
	csrfKey, err := hkdf.Key(sha256.New, cfg.Key, nil, labelCSRF, 32)
	if err != nil {
		return nil, fmt.Errorf("userauth: derive CSRF key: %w", err)
	}
	sessCSRFKey, err := hkdf.Key(sha256.New, cfg.Key, nil, labelSessionCSRF, 32)
	if err != nil {
		return nil, fmt.Errorf("userauth: derive CSRF key: %w", err)
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("userauth: session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("userauth: session cipher: %w", err)
	}
	if cfg.Secure {
		name = hostPrefix + name
	}
	return &Sessions{
		aead:        aead,
		csrfKey:     csrfKey,
		sessCSRFKey: sessCSRFKey,
		name:        name,
		csrfName:    name + "_csrf",
		secure:      cfg.Secure,
		ttl:         ttl,
		now:         now,
		additional:  []byte(name),
	}, nil
}

func checkCookieName(name string) error {
	if len(name) > 64 {
		return fmt.Errorf("userauth: cookie name is %d bytes long; the limit is 64", len(name))
	}
	if err := (&http.Cookie{Name: name + "_csrf", Value: "x"}).Valid(); err != nil {
		return fmt.Errorf("userauth: cookie name %q: %w", name, err)
	}
	if strings.HasPrefix(name, "__") {
		return fmt.Errorf("userauth: cookie name %q starts with \"__\"; Secure adds the %q prefix", name, hostPrefix)
	}
	return nil
}

// CookieName returns the name of the session cookie, with the "__Host-"
// prefix when Secure.
func (s *Sessions) CookieName() string { return s.name }

// Start signs user in: it sets a new session cookie on w, replacing any
// earlier one, and returns the session. The cookie holds the session as
// JSON sealed with AES-256-GCM under a random nonce, base64url-encoded;
// it is HttpOnly, SameSite=Lax, Path=/, Secure when configured, and lasts
// the TTL.
func (s *Sessions) Start(w http.ResponseWriter, user string) (Session, error) {
	if user == "" {
		return Session{}, errors.New("userauth: start session: empty user name")
	}
	now := s.now().Truncate(time.Second)
	sess := Session{ID: randomText(idLen), User: user, AuthTime: now, Expires: now.Add(s.ttl)}
	plain, err := json.Marshal(sealedSession{
		ID: sess.ID, User: sess.User, AuthTime: sess.AuthTime.Unix(), Expires: sess.Expires.Unix(),
	})
	if err != nil {
		return Session{}, fmt.Errorf("userauth: start session: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, plain, s.additional)
	http.SetCookie(w, s.cookie(s.name, base64.RawURLEncoding.EncodeToString(sealed), int(s.ttl/time.Second)))
	return sess, nil
}

// cookie returns a cookie with the attributes every cookie of Sessions
// has. maxAge 0 leaves Max-Age out; negative deletes the cookie.
func (s *Sessions) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// Get returns the session of the browser that sent r. It returns an error
// wrapping [ErrNoSession] when there is no session cookie, or none that
// opens with the key, or the session has expired. A session also ends once
// the configured TTL has passed since sign-in, even if its cookie claims
// a later expiry.
func (s *Sessions) Get(r *http.Request) (Session, error) {
	cookies := r.CookiesNamed(s.name)
	if len(cookies) == 0 {
		return Session{}, fmt.Errorf("%w: no cookie", ErrNoSession)
	}
	err := fmt.Errorf("%w: cookie does not open", ErrNoSession)
	for _, c := range cookies {
		sess, ok := s.open(c.Value)
		if !ok {
			continue
		}
		now := s.now()
		if !now.Before(sess.Expires) || !now.Before(sess.AuthTime.Add(s.ttl)) {
			err = fmt.Errorf("%w: expired", ErrNoSession)
			continue
		}
		return sess, nil
	}
	return Session{}, err
}

// open decodes and opens a session cookie value.
func (s *Sessions) open(value string) (Session, bool) {
	if value == "" || len(value) > maxCookieValue {
		return Session{}, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return Session{}, false
	}
	nonce, sealed := raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, nonce, sealed, s.additional)
	if err != nil {
		return Session{}, false
	}
	var ss sealedSession
	if err := json.Unmarshal(plain, &ss); err != nil || ss.ID == "" || ss.User == "" || ss.Expires <= ss.AuthTime {
		return Session{}, false
	}
	return Session{ID: ss.ID, User: ss.User, AuthTime: time.Unix(ss.AuthTime, 0), Expires: time.Unix(ss.Expires, 0)}, true
}

// End signs the browser out by deleting its session cookie.
func (s *Sessions) End(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie(s.name, "", -1))
}

// CSRFToken returns the CSRF token to put in a form shown to a browser
// that has no session yet (the login form), for the browser that sent r.
// The token is the base64url HMAC-SHA256 of the browser's CSRF cookie, a
// random value set on w here if r has none (a cookie that lasts until the
// browser closes). Forms shown in a session use [Sessions.SessionCSRFToken].
func (s *Sessions) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	for _, c := range r.CookiesNamed(s.csrfName) {
		if raw, ok := decodeCSRFCookie(c.Value); ok {
			return s.csrfMAC(raw)
		}
	}
	raw := make([]byte, csrfLen)
	_, _ = rand.Read(raw)
	http.SetCookie(w, s.cookie(s.csrfName, base64.RawURLEncoding.EncodeToString(raw), 0))
	return s.csrfMAC(raw)
}

// CheckCSRF checks token, from a posted form, against the CSRF cookie r
// carries, in constant time. The error wraps [ErrCSRF].
func (s *Sessions) CheckCSRF(r *http.Request, token string) error {
	if token == "" {
		return fmt.Errorf("%w: no token", ErrCSRF)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: malformed token", ErrCSRF)
	}
	cookies := r.CookiesNamed(s.csrfName)
	if len(cookies) == 0 {
		return fmt.Errorf("%w: no CSRF cookie", ErrCSRF)
	}
	for _, c := range cookies {
		raw, ok := decodeCSRFCookie(c.Value)
		if !ok {
			continue
		}
		m := hmac.New(sha256.New, s.csrfKey)
		m.Write(raw)
		if hmac.Equal(m.Sum(nil), got) {
			return nil
		}
	}
	return fmt.Errorf("%w: token does not match the cookie", ErrCSRF)
}

// SessionCSRFToken returns the CSRF token to put in a form shown in sess
// (the consent form): the base64url HMAC-SHA256 of the session's ID,
// under a key of its own derived from [SessionConfig.Key]. The session ID
// never leaves the sealed cookie, so only this server can make the token,
// and only for that session. It returns "" for a session without an ID.
func (s *Sessions) SessionCSRFToken(sess Session) string {
	if sess.ID == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(s.sessionMAC(sess.ID))
}

// CheckSessionCSRF checks token, from a form posted in sess (as [Sessions.Get]
// returned it for the request), against that session, in constant time. A
// token of another session, one from [Sessions.CSRFToken] and any token
// with a session without an ID are refused; the error wraps [ErrCSRF].
func (s *Sessions) CheckSessionCSRF(sess Session, token string) error {
	if sess.ID == "" {
		return fmt.Errorf("%w: no session", ErrCSRF)
	}
	if token == "" {
		return fmt.Errorf("%w: no token", ErrCSRF)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: malformed token", ErrCSRF)
	}
	if !hmac.Equal(s.sessionMAC(sess.ID), got) {
		return fmt.Errorf("%w: token is not this session's", ErrCSRF)
	}
	return nil
}

func (s *Sessions) sessionMAC(id string) []byte {
	m := hmac.New(sha256.New, s.sessCSRFKey)
	m.Write([]byte(id))
	return m.Sum(nil)
}

func (s *Sessions) csrfMAC(raw []byte) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write(raw)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func decodeCSRFCookie(value string) ([]byte, bool) {
	if len(value) != base64.RawURLEncoding.EncodedLen(csrfLen) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value)
	return raw, err == nil && len(raw) == csrfLen
}

// randomText returns n random bytes in base64url.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
