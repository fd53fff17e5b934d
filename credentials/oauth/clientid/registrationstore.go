package clientid

import (
	"context"
	"time"
)

// Registration is a client registered for a workload at an authorization
// server (RFC 7591 §3.2.1, RFC 7592 §3). It holds the registration access
// token, a credential for managing the client: a store must keep it
// owner-only.
type Registration struct {
	// Issuer is the authorization server's issuer identifier.
	Issuer string `json:"issuer"`
	// Workload is the workload's name.
	Workload string `json:"workload"`
	// ClientID is the client_id the server assigned.
	ClientID string `json:"client_id"`
	// ClientIDIssuedAt is client_id_issued_at, seconds since the epoch;
	// zero when the server did not say.
	ClientIDIssuedAt int64 `json:"client_id_issued_at,omitempty"`
	// RegistrationAccessToken and RegistrationClientURI are the RFC 7592
	// management credential and endpoint, when the server gave them.
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
	// JWKSURI is the jwks_uri registered; empty when the key set was
	// registered inline (jwks).
	JWKSURI string `json:"jwks_uri,omitempty"`
	// KeyID is the kid of the workload key registered.
	KeyID string `json:"kid"`
	// RegisteredAt is when the host registered the client.
	RegisteredAt time.Time `json:"registered_at"`
	// Renewed is set on a registration that replaced one the server
	// refused ([Manager.Rejected]).
	Renewed bool `json:"renewed,omitempty"`
}

// RegistrationStore keeps registrations by (issuer, workload), so that a
// restarted host reuses them instead of registering again.
//
// Implementations must be safe for concurrent use.
type RegistrationStore interface {
	// Load returns the registration saved for workload at issuer. It MUST
	// return an error wrapping [ErrNotFound] (or fs.ErrNotExist) when
	// none is saved.
	Load(ctx context.Context, issuer, workload string) (*Registration, error)
	// Save saves r under (r.Issuer, r.Workload), replacing any saved one.
	Save(ctx context.Context, r *Registration) error
	// Delete drops the registration of workload at issuer. Deleting one
	// that is not saved is not an error.
	Delete(ctx context.Context, issuer, workload string) error
}
