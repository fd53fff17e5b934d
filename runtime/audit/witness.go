package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultWitnessTimeout bounds one request to a witness when
// WitnessConfig.HTTPClient is nil.
const DefaultWitnessTimeout = 10 * time.Second

// maxWitnessResponse caps what is read of a witness's answer.
const maxWitnessResponse = 64 << 10

// maxProofLines is the most consistency proof lines a request may carry
// (c2sp.org/tlog-witness).
const maxProofLines = 63

// ErrWitnessRefused is returned (wrapped) when the witness refuses a
// checkpoint for a reason that says nothing about the log's consistency:
// an unknown origin, an untrusted key, a malformed request.
var ErrWitnessRefused = errors.New("audit: the witness refused the checkpoint")

// ConsistencyProver gives the consistency proofs a witness asks for;
// [Log] is one.
type ConsistencyProver interface {
	ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error)
}

// WitnessConfig configures [NewWitness].
type WitnessConfig struct {
	// URL is the witness's submission prefix: checkpoints are POSTed to
	// URL + "/add-checkpoint". Required.
	URL string
	// Key is the witness's verifier key for Ed25519 cosignatures
	// ([ParseCosignatureVerifier]). Required: every cosignature the
	// witness returns is checked with it.
	Key string
	// HTTPClient sends the requests; nil means a client with
	// DefaultWitnessTimeout. Redirects are never followed.
	HTTPClient *http.Client
	// Logger; nil means silent.
	Logger *slog.Logger
	// Now is the clock, against which cosignature timestamps from the
	// future are refused; nil means time.Now.
	Now func() time.Time
}

// Witness submits the log's checkpoints to a transparency-log witness as
// c2sp.org/tlog-witness describes (add-checkpoint, with a consistency
// proof from the size the witness last cosigned) and checks the
// cosignatures it returns. It is safe for concurrent use; submissions are
// serialised, as the witness keeps one latest size per log.
type Witness struct {
	endpoint string
	verifier *cosignatureVerifier
	hc       *http.Client
	log      *slog.Logger

	mu   sync.Mutex
	size int64 // the tree size the witness last cosigned for the log; -1 unknown
}

// NewWitness returns a client of the witness cfg describes.
func NewWitness(cfg WitnessConfig) (*Witness, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("audit: witness: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	v, err := parseCosignatureVerifier(cfg.Key, now)
	if err != nil {
		return nil, fmt.Errorf("audit: witness: %w", err)
	}
	hc := &http.Client{Timeout: DefaultWitnessTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Witness{
		endpoint: strings.TrimSuffix(cfg.URL, "/") + "/add-checkpoint",
		verifier: v, hc: hc, log: logger, size: -1,
	}, nil
}

// Name is the witness's key name.
func (w *Witness) Name() string { return w.verifier.name }

// AddCheckpoint submits checkpoint, a checkpoint the log signed, to the
// witness with the consistency proof from the size the witness last
// cosigned (learning that size from the witness's 409 answer when it is
// not known yet), and returns checkpoint with the witness's cosignature
// lines added, each checked with the witness key.
//
// A witness that has cosigned a larger tree, another tree of the same
// size, or cannot verify the proof shows that the log was rolled back or
// rewritten: the error then wraps [ErrTampered]. Other refusals wrap
// [ErrWitnessRefused].
func (w *Witness) AddCheckpoint(ctx context.Context, checkpoint []byte, proofs ConsistencyProver) ([]byte, error) {
	size, err := CheckpointSize(checkpoint)
	if err != nil {
		return nil, fmt.Errorf("audit: witness: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old := max(w.size, 0)
	for range 3 {
		if old > size {
			return nil, fmt.Errorf("audit: witness %s: %w: it has cosigned a tree of %d records but the log holds %d: the log was rolled back",
				w.Name(), ErrTampered, old, size)
		}
		var proof tlog.TreeProof
		if old > 0 && old < size {
			if proof, err = proofs.ConsistencyProof(ctx, old, size); err != nil {
				return nil, fmt.Errorf("audit: witness %s: %w", w.Name(), err)
			}
			if len(proof) > maxProofLines {
				return nil, fmt.Errorf("audit: witness %s: a proof of %d hashes is longer than the protocol allows", w.Name(), len(proof))
			}
		}
		status, ctype, body, err := w.post(ctx, addCheckpointBody(old, proof, checkpoint))
		if err != nil {
			return nil, fmt.Errorf("audit: witness %s: %w", w.Name(), err)
		}
		switch status {
		case http.StatusOK:
			out, err := w.cosigned(checkpoint, body)
			if err != nil {
				return nil, fmt.Errorf("audit: witness %s: %w", w.Name(), err)
			}
			w.size = size
			return out, nil
		case http.StatusConflict:
			latest, err := parseSizeAnswer(ctype, body)
			if err != nil {
				return nil, fmt.Errorf("audit: witness %s: 409: %w", w.Name(), err)
			}
			if latest == old {
				// The size matched: the witness holds another tree of it.
				return nil, fmt.Errorf("audit: witness %s: %w: it has cosigned another tree of %d records: the log was rewritten",
					w.Name(), ErrTampered, old)
			}
			w.log.DebugContext(ctx, "audit: witness holds another size", slog.Int64("sent", old), slog.Int64("witness", latest))
			old, w.size = latest, latest
		case http.StatusUnprocessableEntity:
			return nil, fmt.Errorf("audit: witness %s: %w: the consistency proof from its %d records to the log's %d does not verify: the log was rewritten",
				w.Name(), ErrTampered, old, size)
		case http.StatusNotFound:
			return nil, fmt.Errorf("audit: witness %s: %w: it does not know the log %s (404)", w.Name(), ErrWitnessRefused, originOf(checkpoint))
		case http.StatusForbidden:
			return nil, fmt.Errorf("audit: witness %s: %w: it does not trust the log's key (403)", w.Name(), ErrWitnessRefused)
		default:
			return nil, fmt.Errorf("audit: witness %s: %w: %d %s", w.Name(), ErrWitnessRefused, status, bytes.TrimSpace(body[:min(len(body), 200)]))
		}
	}
	return nil, fmt.Errorf("audit: witness %s: its latest size kept changing", w.Name())
}

// addCheckpointBody is the add-checkpoint request body: the old size line,
// the proof lines, an empty line and the checkpoint.
func addCheckpointBody(old int64, proof tlog.TreeProof, checkpoint []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(checkpoint)
	return b.Bytes()
}

func (w *Witness) post(ctx context.Context, body []byte) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWitnessResponse+1))
	if err != nil {
		return 0, "", nil, err
	}
	if len(data) > maxWitnessResponse {
		return 0, "", nil, fmt.Errorf("answer larger than %d bytes", maxWitnessResponse)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), data, nil
}

// parseSizeAnswer reads a 409 answer: a tree size and a newline, as
// text/x.tlog.size.
func parseSizeAnswer(ctype string, body []byte) (int64, error) {
	if mt, _, err := mime.ParseMediaType(ctype); err != nil || mt != "text/x.tlog.size" {
		return 0, fmt.Errorf("answer of type %q, want text/x.tlog.size", ctype)
	}
	line, ok := bytes.CutSuffix(body, []byte("\n"))
	n, err := strconv.ParseInt(string(line), 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("answer %q is not a tree size", body[:min(len(body), 40)])
	}
	return n, nil
}

// cosigned checks the witness's answer, signature lines on checkpoint,
// and returns checkpoint with those by the witness key added.
func (w *Witness) cosigned(checkpoint, answer []byte) ([]byte, error) {
	if len(answer) == 0 {
		return nil, errors.New("empty answer: no cosignature")
	}
	n, err := note.Open(append(bytes.Clone(checkpoint), answer...), note.VerifierList(w.verifier))
	if err != nil {
		return nil, fmt.Errorf("the cosignatures do not verify with key %s+%08x: %w", w.verifier.name, w.verifier.hash, err)
	}
	if len(n.Sigs) == 0 {
		return nil, errors.New("no cosignature by the witness key")
	}
	out := bytes.Clone(checkpoint)
	for line := range strings.Lines(string(answer)) {
		name, b64, _ := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "\u2014 "), " ")
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) < 4 || name != w.verifier.name || binary.BigEndian.Uint32(sig) != w.verifier.hash {
			continue
		}
		out = append(out, line...)
	}
	return out, nil
}
