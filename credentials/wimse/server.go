package wimse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/agenthost/agenthost/credentials"
)

// Mode is a kind of WIMSE proof of possession.
type Mode string

// Proof modes.
const (
	// ModeWPT proves possession with a Workload Proof Token in the
	// Workload-Proof-Token header (SPECS.md §8.3).
	ModeWPT Mode = "wpt"
	// ModeHTTPSig proves possession with an RFC 9421 HTTP message
	// signature under the WIMSE profile (SPECS.md §8.4).
	ModeHTTPSig Mode = "http-sig"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeWPT || m == ModeHTTPSig }

// Peer is the workload at the other end of a verified request.
type Peer struct {
	// WIT is the verified Workload Identity Token.
	WIT *WIT
	// Mode says how possession of the WIT key was proven.
	Mode Mode
	// ProofID is the WPT jti or the signature nonce.
	ProofID string
	// ProofExpiresAt is the WPT exp or the signature expires.
	ProofExpiresAt time.Time
	// Audience is the audience the proof was made for.
	Audience string
	// WPT is the verified proof token in ModeWPT, nil otherwise.
	WPT *WPT
	// Signature is the verified signature in ModeHTTPSig, nil otherwise.
	Signature *Signature
}

// Identity returns the peer's workload identifier, the WIT's sub.
func (p *Peer) Identity() credentials.Identity { return p.WIT.Subject }

type peerKey struct{}

// WithPeer returns a copy of ctx carrying p.
func WithPeer(ctx context.Context, p *Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFromContext returns the WIMSE peer [Verifier.Middleware] verified
// for the request whose context is ctx.
func PeerFromContext(ctx context.Context) (*Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(*Peer)
	return p, ok && p != nil
}

// Verify authenticates the workload that sent r: it verifies the
// Workload-Identity-Token (SPECS.md §8.2), then the proof that goes with
// it, a Workload-Proof-Token (§8.3) or a WIMSE HTTP message signature
// (§8.4), for the audience [Verifier.Audience] derives from
// Config.BaseURL. In the WPT mode the proof must bind the access token of
// an Authorization header using the Bearer or DPoP scheme, the Txn-Token
// header and the configured other-token headers present on r. In the
// HTTP-signature mode r.Body is read and replaced (see
// [Verifier.VerifySignature]).
//
// A request without a Workload-Identity-Token header yields [ErrNoWIT]
// alone, which a server that also serves other callers treats as "no
// WIMSE peer" — unless it carries a Workload-Proof-Token, which is
// refused. More than one WIT or WPT header, a WIT without a proof (a WIT
// is never a bearer token), and every verification failure are refused
// with an error wrapping [ErrInvalidWIT] or [ErrInvalidProof] and the
// reason (see the package's sentinel errors).
func (v *Verifier) Verify(r *http.Request) (*Peer, error) {
	p, err := v.verify(r)
	ctx := r.Context()
	if err != nil {
		if !errors.Is(err, ErrNoWIT) {
			v.log.LogAttrs(ctx, slog.LevelDebug, "wimse request refused", slog.String(logKeyError, err.Error()))
		}
		return nil, err
	}
	v.log.LogAttrs(ctx, slog.LevelDebug, "wimse peer verified",
		slog.String(logKeySubject, p.WIT.Subject.String()),
		slog.String(logKeyProof, string(p.Mode)),
		slog.String(logKeyProofID, TokenHash(p.ProofID)),
		slog.String(logKeyAudience, p.Audience),
	)
	return p, nil
}

func (v *Verifier) verify(r *http.Request) (*Peer, error) {
	ctx := r.Context()
	wits := r.Header.Values(HeaderWIT)
	wpts := r.Header.Values(HeaderWPT)
	switch {
	case len(wits) == 0 && len(wpts) > 0:
		return nil, proofError(nil, "%s without %s", HeaderWPT, HeaderWIT)
	case len(wits) == 0:
		return nil, ErrNoWIT
	case len(wits) > 1:
		return nil, witError(nil, "%d %s headers, want one", len(wits), HeaderWIT)
	}
	if v.base == nil {
		return nil, errConfigNoBaseURL
	}
	wit, err := v.VerifyWIT(ctx, wits[0])
	if err != nil {
		return nil, err
	}
	aud := v.Audience(r)
	peer := &Peer{WIT: wit, Audience: aud}
	switch {
	case len(wpts) > 1:
		return nil, proofError(nil, "%d %s headers, want one", len(wpts), HeaderWPT)
	case len(wpts) == 1:
		want := WPTExpectations{Audience: aud}
		if want.AccessToken, err = accessToken(r.Header); err != nil {
			return nil, proofError(ErrTokenBinding, "%v", err)
		}
		if want.TxnToken, err = singleHeader(r.Header, HeaderTxnToken); err != nil {
			return nil, proofError(ErrTokenBinding, "%v", err)
		}
		if want.OtherTokens, err = otherTokens(r.Header, v.otherTokens); err != nil {
			return nil, proofError(ErrTokenBinding, "%v", err)
		}
		w, err := v.VerifyWPT(ctx, wpts[0], wit, want)
		if err != nil {
			return nil, err
		}
		peer.Mode, peer.WPT, peer.ProofID, peer.ProofExpiresAt = ModeWPT, w, w.ID, w.ExpiresAt
	case len(r.Header.Values(HeaderSignatureInput)) > 0:
		s, err := v.VerifySignature(r, wit, aud)
		if err != nil {
			return nil, err
		}
		peer.Mode, peer.Signature, peer.ProofID, peer.ProofExpiresAt = ModeHTTPSig, s, s.Nonce, s.Expires
	default:
		return nil, proofError(nil, "%s without %s or HTTP message signature", HeaderWIT, HeaderWPT)
	}
	return peer, nil
}

var errConfigNoBaseURL = fmt.Errorf("%w: no BaseURL", ErrConfig)

// Middleware verifies each request with [Verifier.Verify]. A verified
// peer is put in the request context ([PeerFromContext]). A request
// without a Workload-Identity-Token passes through with no peer, unless
// Config.Require is set. Any other failure is answered by
// Config.ErrorHandler ([WriteError] by default) and the request goes no
// further (SPECS.md §8.4: nothing is processed before both the WIT and the
// proof are valid).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := v.Verify(r)
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(WithPeer(r.Context(), p)))
		case errors.Is(err, ErrNoWIT) && !v.require:
			next.ServeHTTP(w, r)
		default:
			v.onError(w, r, err)
		}
	})
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// reasons maps each sentinel to the detail WriteError gives, most
// specific first.
var reasons = []struct {
	err    error
	detail string
}{
	{ErrReplayed, "proof replayed"},
	{ErrWrongAudience, "proof made for another audience"},
	{ErrTokenBinding, "proof not bound to the presented tokens"},
	{ErrContentDigest, "content digest mismatch"},
	{ErrBodyTooLarge, "body too large to verify"},
	{ErrWrongType, "wrong token type"},
	{ErrSignature, "bad signature"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not yet valid"},
	{credentials.ErrUntrustedDomain, "untrusted trust domain"},
	{ErrUnsupported, "signed response not supported"},
}

// StatusCode returns the HTTP status [WriteError] answers err with:
// 400 for a refused WIT or proof (SPECS.md §8.2, §8.4: not 401, which
// would call for WWW-Authenticate), 501 when a signed response was asked
// for, 413 for a body too large to verify, 503 when the replay cache is
// full, and 500 for anything else.
func StatusCode(err error) int {
	switch {
	case errors.Is(err, ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidWIT), errors.Is(err, ErrInvalidProof), errors.Is(err, ErrNoWIT):
		return http.StatusBadRequest
	case errors.Is(err, ErrReplayCacheFull):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteError answers a refused request with an RFC 9457 problem details
// body whose title names the kind (invalid workload identity token,
// invalid proof of possession) and whose detail names the reason, with
// the status of [StatusCode]. Internal causes are never written.
func WriteError(w http.ResponseWriter, err error) {
	status := StatusCode(err)
	p := problem{Type: "about:blank", Status: status, Title: http.StatusText(status)}
	switch {
	case errors.Is(err, ErrNoWIT):
		p.Title = "workload identity required"
		p.Detail = "no " + HeaderWIT + " header"
	case errors.Is(err, ErrInvalidWIT):
		p.Title = "invalid workload identity token"
	case errors.Is(err, ErrInvalidProof):
		p.Title = "invalid proof of possession"
	}
	if status < 500 || status == http.StatusNotImplemented {
		for _, r := range reasons {
			if errors.Is(err, r.err) {
				p.Detail = r.detail
				break
			}
		}
	}
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
