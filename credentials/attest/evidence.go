package attest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// sha256HexLen is the length of a SHA-256 digest in hexadecimal.
const sha256HexLen = 64

// Evidence is what was observed about a workload process when the host
// issued it a credential. It is stored with the credential; the JSON field
// names are part of the stored format and do not change.
type Evidence struct {
	// Path is where the running executable was found, as the kernel
	// reports it. If the file was removed or replaced on disk after the
	// process started, Unlinked is true and Path is where it used to be.
	Path string `json:"path"`
	// SHA256 is the lowercase hexadecimal SHA-256 of the running
	// executable's content.
	SHA256 string `json:"sha256"`
	// PID is the process id, in the pid namespace of the proc filesystem
	// that was read.
	PID int `json:"pid"`
	// UID and GID are the effective user and group ids of the process,
	// the ones SO_PEERCRED reports for its socket connections.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// ConfigDigest is the lowercase hexadecimal digest of the
	// configuration the host gave the plugin, as supplied by the caller;
	// empty when there was none.
	ConfigDigest string `json:"config_digest,omitempty"`
	// CollectedAt is when collection completed: the process was running
	// the hashed image at that time.
	CollectedAt time.Time `json:"collected_at"`
	// Size and ModTime describe the executable file that was hashed.
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// Unlinked reports that the running executable no longer has a name
	// on disk: it was removed, or another file was renamed over it.
	Unlinked bool `json:"unlinked,omitempty"`
}

// Validate reports whether e is complete and well formed: a positive pid,
// non-negative ids and size, a path, a collection time, and digests in
// lowercase hexadecimal (SHA256 of exactly 64 digits). It returns an error
// wrapping [ErrInvalidEvidence] that names the first bad field.
func (e Evidence) Validate() error {
	switch {
	case e.Path == "":
		return fmt.Errorf("%w: empty path", ErrInvalidEvidence)
	case e.PID <= 0:
		return fmt.Errorf("%w: pid %d is not positive", ErrInvalidEvidence, e.PID)
	case e.UID < 0:
		return fmt.Errorf("%w: uid %d is negative", ErrInvalidEvidence, e.UID)
	case e.GID < 0:
		return fmt.Errorf("%w: gid %d is negative", ErrInvalidEvidence, e.GID)
	case e.Size < 0:
		return fmt.Errorf("%w: size %d is negative", ErrInvalidEvidence, e.Size)
	case e.CollectedAt.IsZero():
		return fmt.Errorf("%w: collection time is zero", ErrInvalidEvidence)
	}
	if err := checkHex(e.SHA256, sha256HexLen, false); err != nil {
		return fmt.Errorf("%w: sha256: %w", ErrInvalidEvidence, err)
	}
	if e.ConfigDigest != "" {
		if err := checkHex(e.ConfigDigest, 0, false); err != nil {
			return fmt.Errorf("%w: config digest: %w", ErrInvalidEvidence, err)
		}
	}
	return nil
}

// Policy is what [Verify] requires of evidence. A zero field is not
// checked; a zero Policy accepts any valid evidence.
type Policy struct {
	// SHA256 is the expected digest of the executable, in hexadecimal
	// (either case).
	SHA256 string
	// UIDs are the effective uids the process may run as.
	UIDs []int
	// ConfigDigest is the expected configuration digest, in hexadecimal
	// (either case).
	ConfigDigest string
}

// Verify checks e against want. It returns nil when every check passes;
// otherwise it returns the failures joined, each wrapping one of
// [ErrDigestMismatch], [ErrUIDNotAllowed] or [ErrConfigMismatch], so
// errors.Is tells which checks failed. Malformed evidence is reported as
// [ErrInvalidEvidence] and a malformed policy as [ErrInvalidPolicy], before
// any check is made.
func Verify(e Evidence, want Policy) error {
	if err := e.Validate(); err != nil {
		return err
	}
	var wantSHA, wantConfig string
	if want.SHA256 != "" {
		if err := checkHex(want.SHA256, sha256HexLen, true); err != nil {
			return fmt.Errorf("%w: sha256: %w", ErrInvalidPolicy, err)
		}
		wantSHA = strings.ToLower(want.SHA256)
	}
	if want.ConfigDigest != "" {
		if err := checkHex(want.ConfigDigest, 0, true); err != nil {
			return fmt.Errorf("%w: config digest: %w", ErrInvalidPolicy, err)
		}
		wantConfig = strings.ToLower(want.ConfigDigest)
	}
	var errs []error
	if wantSHA != "" && e.SHA256 != wantSHA {
		errs = append(errs, fmt.Errorf("%w: %s has sha256 %s, policy requires %s",
			ErrDigestMismatch, e.Path, e.SHA256, wantSHA))
	}
	if len(want.UIDs) > 0 && !slices.Contains(want.UIDs, e.UID) {
		errs = append(errs, fmt.Errorf("%w: pid %d runs as uid %d, policy allows %v",
			ErrUIDNotAllowed, e.PID, e.UID, want.UIDs))
	}
	if wantConfig != "" && e.ConfigDigest != wantConfig {
		got := e.ConfigDigest
		if got == "" {
			got = "none"
		}
		errs = append(errs, fmt.Errorf("%w: evidence has %s, policy requires %s",
			ErrConfigMismatch, got, wantConfig))
	}
	return errors.Join(errs...)
}

// checkHex reports whether s is a non-empty string of hexadecimal digits
// with an even count (whole bytes), of exactly n digits when n > 0.
// Uppercase digits are accepted only when anyCase is set.
func checkHex(s string, n int, anyCase bool) error {
	if s == "" {
		return errors.New("empty digest")
	}
	if n > 0 && len(s) != n {
		return fmt.Errorf("digest %q has %d hexadecimal digits, want %d", s, len(s), n)
	}
	if len(s)%2 != 0 {
		return fmt.Errorf("digest %q has an odd number of hexadecimal digits", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case anyCase && 'A' <= c && c <= 'F':
		default:
			if anyCase {
				return fmt.Errorf("digest %q has a non-hexadecimal character at offset %d", s, i)
			}
			return fmt.Errorf("digest %q has a character other than a lowercase hexadecimal digit at offset %d", s, i)
		}
	}
	return nil
}
