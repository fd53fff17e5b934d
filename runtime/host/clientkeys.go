package host

// Keys of static clients the host generates (auth.clients[].generate_key):
// a P-256 key pair per client, the private key kept owner-only in the
// data directory, where `agenthost token` reads it, and the public key
// registered with the authorization server as the client's JWK Set.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/agenthost/agenthost/credentials/jose"
)

// clientKeysDirName is the data directory's folder of generated client
// keys.
const clientKeysDirName = "clients"

// safeFileName is a client ID usable as a file name as it is.
var safeFileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ClientKeyPath is where the host keeps the private key it generated for
// the static client id under dataDir: clients/<id>.key, or the SHA-256 of
// the ID for an ID that is not a plain file name.
func ClientKeyPath(dataDir, id string) string {
	name := id
	if !safeFileName.MatchString(id) {
		sum := sha256.Sum256([]byte(id))
		name = hex.EncodeToString(sum[:])
	}
	return filepath.Join(dataDir, clientKeysDirName, name+".key")
}

// ReadClientKey reads a PKCS#8 PEM private key file (as the host writes
// for a generated client key) and returns the key and its kid (the JWK
// thumbprint of its public key).
func ReadClientKey(path string) (crypto.Signer, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("host: client key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, "", fmt.Errorf("host: client key %s: not a PEM \"PRIVATE KEY\" (PKCS #8) file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("host: client key %s: %w", path, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("host: client key %s: a %T cannot sign", path, k)
	}
	kid, err := jose.Thumbprint(signer.Public())
	if err != nil {
		return nil, "", fmt.Errorf("host: client key %s: %w", path, err)
	}
	return signer, kid, nil
}

// generatedClientJWKS returns the JWK Set of client id's generated key,
// creating the key pair under dataDir on first use.
func generatedClientJWKS(dataDir, id string) ([]byte, error) {
	path := ClientKeyPath(dataDir, id)
	key, kid, err := ReadClientKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, kid, err = createClientKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("host: client %s: %w", id, err)
	}
	alg, err := jose.AlgorithmForKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("host: client %s: %w", id, err)
	}
	return jose.MarshalKeySet([]jose.SetKey{{KID: kid, Key: key.Public(), Alg: string(alg), Use: "sig"}})
}

// createClientKey writes a new P-256 key, owner-only, to path, atomically
// (a concurrent creator's key wins if it was written first).
func createClientKey(path string) (crypto.Signer, string, error) {
	if err := EnsurePrivateDir(filepath.Dir(path)); err != nil {
		return nil, "", err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, "", err
	}
	if err := writeKeyFile(path, der); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, "", err
	}
	return ReadClientKey(path)
}

// writeKeyFile writes der as an owner-only PEM "PRIVATE KEY" file at
// path, never replacing one: the key goes to a temporary file in the same
// directory, synced, then linked to its name, which fails (wrapping
// fs.ErrExist) when the name exists, so a reader never sees a partial key
// and a concurrent writer's key wins if it was linked first.
func writeKeyFile(path string, der []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}
