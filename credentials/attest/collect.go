package attest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// DefaultProcRoot is where the proc filesystem is read when
// Config.ProcRoot is empty.
const DefaultProcRoot = "/proc"

// Config configures a [Collector].
type Config struct {
	// ProcRoot is the mount point of the proc filesystem to read; empty
	// means DefaultProcRoot. A host that sees its plugins through another
	// mount (a container given the host's /proc elsewhere) sets it; pids
	// are then those of that mount's pid namespace.
	ProcRoot string
	// Now is the clock that stamps Evidence.CollectedAt; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives a debug record for every collection; nil means
	// silent.
	Logger *slog.Logger
}

// Request says which process to collect evidence about.
type Request struct {
	// PID is the process id. Required.
	PID int
	// ExpectedSHA256 is the hexadecimal SHA-256 (either case) the running
	// executable must have, usually [HashFile] of the binary before
	// launch; empty means no check.
	ExpectedSHA256 string
	// ConfigDigest is the hexadecimal digest (either case) of the
	// configuration the host gave the process; it is recorded, lowercased,
	// in Evidence.ConfigDigest. Empty means none.
	ConfigDigest string
}

// validate checks r and returns it with its digests lowercased.
func (r Request) validate() (Request, error) {
	if r.PID <= 0 {
		return r, fmt.Errorf("%w: pid %d is not positive", ErrInvalidRequest, r.PID)
	}
	if r.ExpectedSHA256 != "" {
		if err := checkHex(r.ExpectedSHA256, sha256HexLen, true); err != nil {
			return r, fmt.Errorf("%w: expected sha256: %w", ErrInvalidRequest, err)
		}
		r.ExpectedSHA256 = strings.ToLower(r.ExpectedSHA256)
	}
	if r.ConfigDigest != "" {
		if err := checkHex(r.ConfigDigest, 0, true); err != nil {
			return r, fmt.Errorf("%w: config digest: %w", ErrInvalidRequest, err)
		}
		r.ConfigDigest = strings.ToLower(r.ConfigDigest)
	}
	return r, nil
}

// Collector collects [Evidence] about processes. It holds no state between
// calls and is safe for concurrent use.
type Collector struct {
	procRoot string
	now      func() time.Time
	log      *slog.Logger

	// afterHash, when set, runs between hashing the executable and the
	// final check that the process is unchanged.
	afterHash func()
}

// New returns a Collector for cfg, with defaults for zero fields.
func New(cfg Config) *Collector {
	c := &Collector{procRoot: cfg.ProcRoot, now: cfg.Now, log: cfg.Logger}
	if c.procRoot == "" {
		c.procRoot = DefaultProcRoot
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Collect is [Collector.Collect] with the zero Config: the system's /proc,
// the real clock and no logging.
func Collect(ctx context.Context, req Request) (Evidence, error) {
	return New(Config{}).Collect(ctx, req)
}

// Collect reads evidence about the process req.PID: the executable it is
// running (hashed through /proc/<pid>/exe, so a binary replaced on disk
// after launch is still hashed as it runs), its effective uid and gid and
// the collection time, with req.ConfigDigest recorded as given.
//
// Errors: [ErrInvalidRequest] for a bad request; [ErrNoProcess] when no
// process has the pid; [ErrProcessExited] or [ErrProcessChanged] when the
// process exits, executes another program or changes ids before collection
// ends; [ErrNoExecutable] for a kernel thread; [ErrNotRegular] and
// [ErrModified] as for [HashFile]; an error wrapping fs.ErrPermission when
// the caller may not read the process's executable; [ErrUnsupported] on
// systems other than Linux; the context's error when ctx ends.
//
// When req.ExpectedSHA256 is set and the running executable differs, the
// error wraps [ErrDigestMismatch] and names both digests, and the returned
// Evidence is complete so that the caller can record what was found. On
// every other error the Evidence is zero.
func (c *Collector) Collect(ctx context.Context, req Request) (Evidence, error) {
	req, err := req.validate()
	if err != nil {
		return Evidence{}, err
	}
	if err := ctx.Err(); err != nil {
		return Evidence{}, fmt.Errorf("attest: collect pid %d: %w", req.PID, err)
	}
	ev, err := c.collect(ctx, req)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "attest collection failed",
			slog.Int("pid", req.PID), slog.String("error", err.Error()))
		return Evidence{}, err
	}
	ev.ConfigDigest = req.ConfigDigest
	ev.CollectedAt = c.now().UTC()
	c.log.LogAttrs(ctx, slog.LevelDebug, "attest evidence collected",
		slog.Int("pid", ev.PID), slog.String("path", ev.Path), slog.String("sha256", ev.SHA256),
		slog.Int("uid", ev.UID), slog.Int("gid", ev.GID), slog.Bool("unlinked", ev.Unlinked))
	if req.ExpectedSHA256 != "" && ev.SHA256 != req.ExpectedSHA256 {
		return ev, fmt.Errorf("%w: pid %d runs %s with sha256 %s, expected %s",
			ErrDigestMismatch, ev.PID, ev.Path, ev.SHA256, req.ExpectedSHA256)
	}
	return ev, nil
}
