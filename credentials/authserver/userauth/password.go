package userauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters of the argon2id hashes [HashPassword] makes: the OWASP
// Password Storage Cheat Sheet's first argon2id configuration.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Bounds on the argon2id hashes [VerifyPassword] accepts. They cap the
// work and memory one verification can cost.
const (
	maxArgonMemory  = 1 << 20 // KiB: 1 GiB
	maxArgonTime    = 10
	maxArgonThreads = 16
	minArgonSalt    = 8
	maxArgonSalt    = 64
	minArgonKey     = 16
	maxArgonKey     = 64
)

const (
	// maxPasswordLen bounds a password in bytes.
	maxPasswordLen = 1024
	// maxHashLen bounds a hash string before it is split; every accepted
	// hash is far shorter.
	maxHashLen = 512
	// bcryptLen is the length of a bcrypt hash: "$2b$", two cost digits,
	// "$", 22 characters of salt and 31 of hash.
	bcryptLen = 60
	// bcryptMaxPassword is the longest password bcrypt reads; the rest of
	// a longer one would be ignored.
	bcryptMaxPassword = 72
)

// bcryptAlphabet is the base64 alphabet of bcrypt's salt and hash.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// argonPrefix starts every hash [HashPassword] makes.
var argonPrefix = fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", argonMemory, argonTime, argonThreads)

// HashPassword returns an argon2id hash of password in PHC string form,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with a 16-byte random salt and a 32-byte hash, both in unpadded standard
// base64. The password must be 1 to 1024 bytes long.
func HashPassword(password string) (string, error) {
	if err := checkPasswordLen(password); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("userauth: read random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return argonPrefix + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key), nil
}

func checkPasswordLen(password string) error {
	switch {
	case password == "":
		return errors.New("userauth: password is empty")
	case len(password) > maxPasswordLen:
		return fmt.Errorf("userauth: password is %d bytes long; the limit is %d", len(password), maxPasswordLen)
	}
	return nil
}

// VerifyPassword reports whether password matches encoded, an argon2id
// hash in PHC string form or a bcrypt hash ($2a$, $2b$ or $2y$).
//
// argon2id hashes must be version 19, with m from 8·p to 1048576 KiB, t
// from 1 to 10, p from 1 to 16, a salt of 8 to 64 bytes and a hash of 16
// to 64 bytes; bcrypt hashes must have a cost from 4 to 31. A hash outside
// those bounds, or not well formed, is an error wrapping [ErrBadHash],
// returned before any hashing work. A wrong password is (false, nil), and
// so is an empty password, one over 1024 bytes, or, for bcrypt, one over
// the 72 bytes bcrypt reads. The final comparison is constant-time.
func VerifyPassword(encoded, password string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	return h.verify(password)
}

// CheckHash reports whether encoded is a hash [VerifyPassword] accepts,
// without a password and without hashing work. Errors wrap [ErrBadHash]
// and never quote the value, which may be a secret written by mistake.
func CheckHash(encoded string) error {
	_, err := parseHash(encoded)
	return err
}

type hashKind int

const (
	kindArgon2id hashKind = iota + 1
	kindBcrypt
)

// parsedHash is a validated password hash.
type parsedHash struct {
	kind hashKind
	// argon2id
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
	// bcrypt
	cost    int
	encoded string
}

// rejectsUnhashed reports whether password is wrong for h without any
// hashing: it is empty, longer than any accepted password, or longer than
// bcrypt reads.
func (h parsedHash) rejectsUnhashed(password string) bool {
	return password == "" || len(password) > maxPasswordLen ||
		h.kind == kindBcrypt && len(password) > bcryptMaxPassword
}

func (h parsedHash) verify(password string) (bool, error) {
	if h.rejectsUnhashed(password) {
		return false, nil
	}
	switch h.kind {
	case kindArgon2id:
		got := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
		return subtle.ConstantTimeCompare(got, h.key) == 1, nil
	case kindBcrypt:
		err := bcrypt.CompareHashAndPassword([]byte(h.encoded), []byte(password))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		}
		return false, fmt.Errorf("%w: bcrypt: %w", ErrBadHash, err)
	}
	return false, fmt.Errorf("%w: unknown kind", ErrBadHash)
}

func badHash(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadHash}, args...)...)
}

// parseHash validates encoded and decodes its parameters.
func parseHash(encoded string) (parsedHash, error) {
	switch {
	case encoded == "":
		return parsedHash{}, badHash("empty")
	case len(encoded) > maxHashLen:
		return parsedHash{}, badHash("%d bytes long, longer than any argon2id or bcrypt hash", len(encoded))
	case strings.HasPrefix(encoded, "$argon2id$"):
		return parseArgon2id(encoded)
	case strings.HasPrefix(encoded, "$argon2i$"), strings.HasPrefix(encoded, "$argon2d$"):
		return parsedHash{}, badHash("argon2i and argon2d are not accepted; use argon2id")
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return parseBcrypt(encoded)
	}
	return parsedHash{}, badHash("not an argon2id or bcrypt hash")
}

func parseArgon2id(encoded string) (parsedHash, error) {
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 {
		return parsedHash{}, badHash("argon2id hash not in PHC form $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[2] != "v=19" {
		return parsedHash{}, badHash("argon2id version is not v=19")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return parsedHash{}, badHash("argon2id parameters are not m=…,t=…,p=…")
	}
	limits := [3]struct {
		name string
		max  uint64
	}{{"m", maxArgonMemory}, {"t", maxArgonTime}, {"p", maxArgonThreads}}
	var vals [3]uint64
	for i, l := range limits {
		text, ok := strings.CutPrefix(params[i], l.name+"=")
		if !ok {
			return parsedHash{}, badHash("argon2id parameters are not m=…,t=…,p=…")
		}
		n, ok := parseDecimal(text)
		if !ok {
			return parsedHash{}, badHash("argon2id parameter %s is not a decimal number", l.name)
		}
		if n == 0 || n > l.max {
			return parsedHash{}, badHash("argon2id parameter %s=%d is outside 1 to %d", l.name, n, l.max)
		}
		vals[i] = n
	}
	if vals[0] < 8*vals[2] {
		return parsedHash{}, badHash("argon2id memory m=%d is below 8 KiB per lane (p=%d)", vals[0], vals[2])
	}
	salt, err := decodeB64(parts[4], "salt", minArgonSalt, maxArgonSalt)
	if err != nil {
		return parsedHash{}, err
	}
	key, err := decodeB64(parts[5], "hash", minArgonKey, maxArgonKey)
	if err != nil {
		return parsedHash{}, err
	}
	return parsedHash{
		kind:    kindArgon2id,
		memory:  uint32(vals[0]),
		time:    uint32(vals[1]),
		threads: uint8(vals[2]),
		salt:    salt,
		key:     key,
	}, nil
}

// parseDecimal parses 1 to 10 ASCII digits: no sign, prefix or
// underscores.
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func decodeB64(s, what string, lo, hi int) ([]byte, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, badHash("argon2id %s is not unpadded standard base64", what)
	}
	if len(b) < lo || len(b) > hi {
		return nil, badHash("argon2id %s is %d bytes; want %d to %d", what, len(b), lo, hi)
	}
	return b, nil
}

func parseBcrypt(encoded string) (parsedHash, error) {
	if len(encoded) != bcryptLen || encoded[6] != '$' {
		return parsedHash{}, badHash("bcrypt hash is not $2b$<cost>$ and 53 characters")
	}
	cost, ok := parseDecimal(encoded[4:6])
	if !ok || cost < uint64(bcrypt.MinCost) || cost > uint64(bcrypt.MaxCost) {
		return parsedHash{}, badHash("bcrypt cost is not 04 to 31")
	}
	for i := 7; i < bcryptLen; i++ {
		if strings.IndexByte(bcryptAlphabet, encoded[i]) < 0 {
			return parsedHash{}, badHash("bcrypt salt or hash has a character outside bcrypt's base64 alphabet")
		}
	}
	return parsedHash{kind: kindBcrypt, cost: int(cost), encoded: encoded}, nil
}
