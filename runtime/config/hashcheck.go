package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sizes of the salt and hash of an argon2id hash, in bytes.
const (
	minArgon2Salt = 8
	maxArgon2Salt = 64
	minArgon2Hash = 16
	maxArgon2Hash = 64
)

// maxHashLen bounds a hash string before it is split; every accepted hash
// is far shorter.
const maxHashLen = 512

// checkPasswordHash checks the syntax of a password or client secret hash
// without a password: an argon2id hash in PHC string form,
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
//
// with salt and hash in unpadded standard base64 and parameters within
// [MaxArgon2Memory], [MaxArgon2Time] and [MaxArgon2Threads], or a bcrypt
// hash ($2a$, $2b$ or $2y$, cost 4 to 31). The error never quotes the
// value, which may be a secret written by mistake.
func checkPasswordHash(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > maxHashLen:
		return fmt.Errorf("is %d bytes long, longer than any argon2id or bcrypt hash", len(s))
	case strings.HasPrefix(s, "$argon2id$"):
		return checkArgon2id(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return errors.New("is an argon2i or argon2d hash; only argon2id is accepted")
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return checkBcrypt(s)
	}
	return errors.New("is not an argon2id or bcrypt hash")
}

func checkArgon2id(s string) error {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	if len(parts) != 6 {
		return errors.New("is not an argon2id hash in PHC form ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
	}
	if parts[2] != "v=19" {
		return errors.New("is an argon2id hash of an unsupported version; want v=19")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return errors.New("has argon2id parameters that are not m=…,t=…,p=…")
	}
	limits := []struct {
		name string
		max  uint64
	}{{"m", MaxArgon2Memory}, {"t", MaxArgon2Time}, {"p", MaxArgon2Threads}}
	var vals [3]uint64
	for i, l := range limits {
		text, ok := strings.CutPrefix(params[i], l.name+"=")
		if !ok {
			return errors.New("has argon2id parameters that are not m=…,t=…,p=…")
		}
		n, err := parseDecimal(text)
		if err != nil {
			return fmt.Errorf("has an argon2id parameter %s that is not a number", l.name)
		}
		if n == 0 || n > l.max {
			return fmt.Errorf("has argon2id parameter %s=%d; want 1 to %d", l.name, n, l.max)
		}
		vals[i] = n
	}
	if vals[0] < 8*vals[2] {
		return fmt.Errorf("has argon2id memory m=%d below 8 KiB per lane (p=%d)", vals[0], vals[2])
	}
	if err := checkBase64Len(parts[4], "salt", minArgon2Salt, maxArgon2Salt); err != nil {
		return err
	}
	return checkBase64Len(parts[5], "hash", minArgon2Hash, maxArgon2Hash)
}

// parseDecimal parses digits only: no sign, no prefix, no underscores.
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 10 {
		return 0, errors.New("bad number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("bad number")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

func checkBase64Len(s, what string, lo, hi int) error {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return fmt.Errorf("has an argon2id %s that is not unpadded base64", what)
	}
	if len(b) < lo || len(b) > hi {
		return fmt.Errorf("has an argon2id %s of %d bytes; want %d to %d", what, len(b), lo, hi)
	}
	return nil
}

// bcryptAlphabet is the base64 alphabet of bcrypt's salt and hash.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func checkBcrypt(s string) error {
	// $2b$ + 2-digit cost + $ + 22 characters of salt + 31 of hash.
	const size = 60
	if len(s) != size || s[6] != '$' {
		return errors.New("is not a bcrypt hash ($2b$<cost>$ and 53 characters)")
	}
	cost, err := parseDecimal(s[4:6])
	if err != nil || cost < 4 || cost > 31 {
		return errors.New("has a bcrypt cost that is not 04 to 31")
	}
	for i := 7; i < size; i++ {
		if !strings.Contains(bcryptAlphabet, s[i:i+1]) {
			return errors.New("has a bcrypt salt or hash with a character outside bcrypt's base64 alphabet")
		}
	}
	return nil
}
