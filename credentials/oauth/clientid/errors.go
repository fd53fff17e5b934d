package clientid

import (
	"errors"
	"io/fs"
)

// Sentinel errors. Every error the package returns wraps at most one of
// them (a cancelled context wraps the context's error instead); test them
// with errors.Is.
var (
	// ErrConfig reports configuration that cannot be used: a malformed
	// workload, URL or server setting, or a setting a forced mode needs
	// that is missing.
	ErrConfig = errors.New("clientid: invalid configuration")

	// ErrUnsupported reports an authorization server that lacks what the
	// mode forced for it needs (a registration_endpoint).
	ErrUnsupported = errors.New("clientid: not supported by the authorization server")

	// ErrRegistration reports a dynamic client registration (RFC 7591)
	// that failed or whose response cannot be used.
	ErrRegistration = errors.New("clientid: client registration failed")

	// ErrRejected reports a client identity the server refused that is
	// not replaced: it is not a registration, or its registration was
	// already redone once (see [Manager.Rejected]).
	ErrRejected = errors.New("clientid: client refused")

	// ErrUnknownWorkload reports a workload name the Manager does not
	// hold.
	ErrUnknownWorkload = errors.New("clientid: unknown workload")

	// ErrNotFound is what a [KeyStore] or [RegistrationStore] returns
	// (wrapped or not) from Load when nothing is saved under the key.
	// Errors wrapping fs.ErrNotExist count as ErrNotFound.
	ErrNotFound = errors.New("clientid: not found")

	// ErrExists is what [KeyStore.Save] returns (wrapped or not) when a
	// key is already saved for the workload. Errors wrapping fs.ErrExist
	// count as ErrExists.
	ErrExists = errors.New("clientid: already exists")
)

func notFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

func exists(err error) bool {
	return errors.Is(err, ErrExists) || errors.Is(err, fs.ErrExist)
}
