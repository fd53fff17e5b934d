package attest

import "errors"

// Sentinel errors of the package; test them with errors.Is. Errors returned
// by this package wrap them with details such as the pid and both digests.
var (
	// ErrInvalidRequest reports a [Request] Collect refuses: a pid that is
	// not positive or names a thread rather than a process, or a digest
	// that is not hexadecimal; and a pid DescendsFrom refuses because it
	// is not positive.
	ErrInvalidRequest = errors.New("attest: invalid request")

	// ErrNoProcess is returned by Collect and DescendsFrom when no process
	// has the pid.
	ErrNoProcess = errors.New("attest: no such process")

	// ErrProcessExited is returned by Collect when the process exited
	// while evidence was being collected, or had already exited and not
	// yet been reaped (a zombie, which has no executable any more); and by
	// DescendsFrom when an ancestor exited before its parent was read.
	ErrProcessExited = errors.New("attest: process exited during collection")

	// ErrProcessChanged is returned by Collect when the process executed
	// another program or changed its uid or gid while evidence was being
	// collected.
	ErrProcessChanged = errors.New("attest: process changed during collection")

	// ErrNoExecutable is returned by Collect for a process that has no
	// executable file, such as a kernel thread.
	ErrNoExecutable = errors.New("attest: process has no executable")

	// ErrNotRegular is returned by HashFile and Collect when the file to
	// hash is not a regular file (a directory, a device, a pipe …).
	ErrNotRegular = errors.New("attest: not a regular file")

	// ErrModified is returned by HashFile and Collect when the file's
	// size or modification time changed while it was being hashed, so
	// the digest may describe no version of the file.
	ErrModified = errors.New("attest: file modified while hashing")

	// ErrDigestMismatch is returned by Collect when the running image
	// differs from Request.ExpectedSHA256, and by Verify when evidence
	// differs from Policy.SHA256. The message holds both digests.
	ErrDigestMismatch = errors.New("attest: executable digest mismatch")

	// ErrUIDNotAllowed is returned by Verify when the evidence's uid is
	// not one of Policy.UIDs.
	ErrUIDNotAllowed = errors.New("attest: uid not allowed")

	// ErrConfigMismatch is returned by Verify when the evidence's
	// configuration digest differs from Policy.ConfigDigest.
	ErrConfigMismatch = errors.New("attest: configuration digest mismatch")

	// ErrInvalidEvidence is returned by Evidence.Validate and Verify for
	// evidence that is incomplete or malformed.
	ErrInvalidEvidence = errors.New("attest: invalid evidence")

	// ErrInvalidPolicy is returned by Verify for a policy whose digests
	// are not hexadecimal.
	ErrInvalidPolicy = errors.New("attest: invalid policy")

	// ErrLineageTooDeep is returned by DescendsFrom for a process with
	// more than MaxLineageDepth ancestors.
	ErrLineageTooDeep = errors.New("attest: process lineage too deep")

	// ErrUnsupported is returned by Collect and DescendsFrom on systems
	// where process evidence cannot be read.
	ErrUnsupported = errors.New("attest: evidence collection unsupported on this system")
)
