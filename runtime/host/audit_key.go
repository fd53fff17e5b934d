package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/store"
)

// The audit log's keys live in the data directory, outside the store the
// log is kept in: whoever can rewrite the store cannot sign what they
// wrote.
const (
	auditDirName = "audit"
	// auditSigningKeyFile holds the signer key (owner only, 0600).
	auditSigningKeyFile = "signing.key"
	// auditVerifierKeyFile holds the verifier key the host last started
	// with, for `agenthost audit verify` while no host runs. It is what
	// the host says of itself: a verifier who does not trust the host
	// pins the key (--key, audit.verifier_key) instead.
	auditVerifierKeyFile = "verifier.key"
)

// keyAuditSigner is where versions before the key file kept the audit
// signing key, in the store. The host moves it out on start.
const keyAuditSigner = "audit-signing-key"

// legacyAuditKey is the stored form of keyAuditSigner.
type legacyAuditKey struct {
	Signer   string `json:"signer"`
	Verifier string `json:"verifier"`
}

// maxKeyFile bounds what is read of a key file.
const maxKeyFile = 4 << 10

// auditSigner returns the audit log's checkpoint signer: the key in the
// environment variable audit.signing_key_env names, or else the key in the
// owner-only file audit/signing.key of the data directory, created on
// first start. A key an earlier version kept in the store moves to the
// file (or must be the one the environment holds) and is deleted from the
// store. The verifier key is written to audit/verifier.key.
func (h *Host) auditSigner(ctx context.Context) (audit.Signer, error) {
	dir := filepath.Join(h.dataDir, auditDirName)
	if err := EnsurePrivateDir(dir); err != nil {
		return nil, err
	}
	legacy, err := readLegacyAuditKey(ctx, h.store)
	if err != nil {
		return nil, err
	}
	var skey string
	if env := h.cfg.Audit.SigningKeyEnv; env != "" {
		skey = strings.TrimSpace(os.Getenv(env))
		if skey == "" {
			return nil, fmt.Errorf("host: audit.signing_key_env names %s, which is not set", env)
		}
	} else {
		path := filepath.Join(dir, auditSigningKeyFile)
		data, err := readPrivateFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if legacy != nil {
				skey = legacy.Signer
			} else if skey, _, err = audit.GenerateKey(rand.Reader, h.cfg.TrustDomain); err != nil {
				return nil, fmt.Errorf("host: create the audit signing key: %w", err)
			}
			if err := writeFileAtomic(path, []byte(skey+"\n"), 0o600); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		default:
			skey = strings.TrimSpace(string(data))
		}
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("host: the audit signing key: %w", err)
	}
	if name, err := audit.KeyName(h.cfg.TrustDomain); err != nil || signer.Name() != name {
		return nil, fmt.Errorf("host: the audit signing key is named %s, not after the trust domain %s", signer.Name(), h.cfg.TrustDomain)
	}
	if legacy != nil {
		if legacy.Signer != skey {
			return nil, fmt.Errorf("host: the store holds an audit signing key (verifier key %s) other than the host's (%s): remove one of them",
				legacy.Verifier, signer.VerifierKey())
		}
		if err := h.store.Delete(ctx, nsHost, keyAuditSigner, store.Always); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("host: remove the audit signing key from the store: %w", err)
		}
		h.log.InfoContext(ctx, "moved the audit signing key out of the store")
	}
	if err := writeFileAtomic(filepath.Join(dir, auditVerifierKeyFile), []byte(signer.VerifierKey()+"\n"), 0o644); err != nil {
		return nil, err
	}
	return signer, nil
}

// readLegacyAuditKey returns the audit key an earlier version kept in the
// store, or nil.
func readLegacyAuditKey(ctx context.Context, kv store.KV) (*legacyAuditKey, error) {
	rec, err := kv.Get(ctx, nsHost, keyAuditSigner)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("host: read the store: %w", err)
	}
	var k legacyAuditKey
	if err := json.Unmarshal(rec.Value, &k); err != nil || k.Signer == "" || k.Verifier == "" {
		return nil, errors.New("host: the audit signing key kept in the store is malformed")
	}
	return &k, nil
}

// readPrivateFile reads a key file, refusing one that is not a regular
// file or that group or others may access.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("host: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("host: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("host: %s has mode %04o; it holds a private key and must be readable by its owner only (chmod 600 %s)",
			path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("host: read %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("host: %s is larger than a key", path)
	}
	return data, nil
}

// hostVerifierKey returns the verifier key the host itself gives for the
// audit log of dataDir: the one it last started with, or the one an
// earlier version kept in the store.
func hostVerifierKey(ctx context.Context, dataDir string, kv store.KV) (string, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, auditDirName, auditVerifierKeyFile))
	if err == nil {
		if len(data) > maxKeyFile {
			return "", errors.New("host: the verifier key file is larger than a key")
		}
		return string(bytes.TrimSpace(data)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("host: %w", err)
	}
	legacy, err := readLegacyAuditKey(ctx, kv)
	if err != nil {
		return "", err
	}
	if legacy == nil {
		return "", errors.New("host: the data directory holds no audit verifier key: give the key to verify with")
	}
	return legacy.Verifier, nil
}
