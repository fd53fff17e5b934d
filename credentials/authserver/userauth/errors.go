package userauth

import "errors"

// Sentinel errors; test them with errors.Is.
var (
	// ErrBadHash reports a password hash that is not a well-formed argon2id
	// or bcrypt hash, or whose parameters are out of bounds.
	ErrBadHash = errors.New("userauth: malformed password hash")

	// ErrBadCredentials reports an unknown user name or a wrong password;
	// the two are deliberately not told apart.
	ErrBadCredentials = errors.New("userauth: bad user name or password")

	// ErrNoSession reports a session cookie that is absent, altered,
	// expired or sealed with another key.
	ErrNoSession = errors.New("userauth: no session")

	// ErrCSRF reports a form whose CSRF token is missing or does not match
	// the browser's CSRF cookie or sign-in session.
	ErrCSRF = errors.New("userauth: CSRF token mismatch")

	// ErrBusy reports a password check that found no free slot of its
	// [Limiter] in time; the password was not checked.
	ErrBusy = errors.New("userauth: too many password checks at once")
)
