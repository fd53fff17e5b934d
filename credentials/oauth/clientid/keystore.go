package clientid

import "context"

// KeyStore keeps each workload's private key for private_key_jwt, as
// PKCS #8 DER. The host backs it with owner-only files; the key is the
// workload's credential at every authorization server that knows it by
// its metadata document, a registration or a static client.
//
// Implementations must be safe for concurrent use.
type KeyStore interface {
	// Load returns the key saved for workload. It MUST return an error
	// wrapping [ErrNotFound] (or fs.ErrNotExist) when none is saved.
	Load(ctx context.Context, workload string) ([]byte, error)
	// Save saves der as workload's key. It MUST NOT replace a saved key:
	// when one is saved already it returns an error wrapping [ErrExists]
	// (or fs.ErrExist), and the caller loads that one.
	Save(ctx context.Context, workload string, der []byte) error
}
