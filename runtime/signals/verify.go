package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// Defaults applied to zero fields of [VerifierConfig].
const (
	// DefaultLeeway is the clock skew allowed on iat (and exp when a SET
	// carries one).
	DefaultLeeway = time.Minute
	// DefaultMaxAge is how old (by iat) a SET may be; it also bounds how
	// long a jti is remembered for replay detection.
	DefaultMaxAge = 24 * time.Hour
	// DefaultMaxSETSize caps a SET's compact serialization.
	DefaultMaxSETSize = 64 << 10
)

// VerifierConfig says which SETs a [Verifier] accepts.
type VerifierConfig struct {
	// Issuer is the transmitter's issuer; the SET's iss must equal it
	// exactly. Required.
	Issuer string
	// Audience is this receiver's audience; the SET's aud must contain
	// it. Required.
	Audience string
	// Keys returns the transmitter's verification key by kid, typically
	// [KeySet.Key]. Required.
	Keys jose.KeyFunc
	// Algorithms lists the accepted JWS algorithms; empty means
	// jose.DefaultAlgorithms.
	Algorithms []jose.Alg
	// Replay remembers jti values; nil means a [MemoryReplay] of default
	// size.
	Replay Replay
	// MaxAge is how old a SET may be by its iat; zero means
	// DefaultMaxAge. jti values are remembered for MaxAge plus Leeway.
	MaxAge time.Duration
	// Leeway is the clock skew allowed; zero means DefaultLeeway and a
	// negative value allows none.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CriticalSubjectMembers are the transmitter's critical complex
	// subject members (its metadata's critical_subject_members).
	CriticalSubjectMembers []string
	// EventTypes lists the event types accepted besides the SSF stream
	// events; empty means [CAEPEvents].
	EventTypes []string
	// MaxSize caps the SET size in bytes; zero means DefaultMaxSETSize.
	MaxSize int
	// ForbidExp rejects any SET carrying exp, which SSF 1.0 forbids. By
	// default a SET needs no exp and one that is present is honoured.
	ForbidExp bool
}

// Verifier verifies SETs from one transmitter (RFC 8417 as profiled by
// SSF 1.0). It is safe for concurrent use.
type Verifier struct {
	cfg    VerifierConfig
	leeway time.Duration
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.Keys == nil {
		return nil, fmt.Errorf("%w: issuer, audience and keys are required", ErrInvalidConfig)
	}
	if cfg.Replay == nil {
		cfg.Replay = NewMemoryReplay(0, cfg.Now)
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.EventTypes) == 0 {
		cfg.EventTypes = CAEPEvents
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSETSize
	}
	v := &Verifier{cfg: cfg, leeway: cfg.Leeway}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	} else if v.leeway < 0 {
		v.leeway = 0
	}
	return v, nil
}

// Verify checks set and returns its event. Checks, in order: size and
// JWS form, typ secevent+jwt only, algorithm and key (by kid, from the
// configured key source), signature, iss, aud, exp when present, iat
// present and not in the future, no sub claim, jti present, events
// holding exactly one event of a known type whose payload conforms, a
// subject of a known format, and finally jti not seen before.
//
// A rejected SET yields a [*SETError] carrying its RFC 8935 code. Other
// errors (keys or replay store unavailable) are transient: the SET should
// be delivered again.
func (v *Verifier) Verify(ctx context.Context, set string) (*Event, error) {
	tok, err := jose.Verify(ctx, set, jose.VerifyOptions{
		Types:        []jose.Typ{jose.TypSecEvent},
		Algorithms:   v.cfg.Algorithms,
		Keys:         v.cfg.Keys,
		Issuer:       v.cfg.Issuer,
		Audience:     v.cfg.Audience,
		OptionalExp:  true,
		Now:          v.cfg.Now,
		Leeway:       v.leeway,
		MaxTokenSize: v.cfg.MaxSize,
	})
	if err != nil {
		return nil, joseRejection(err)
	}
	if _, ok := tok.Claims["exp"]; ok && v.cfg.ForbidExp {
		return nil, reject(CodeInvalidRequest, "exp is not allowed in a SET", nil)
	}
	var payload json.RawMessage
	if err := tok.Decode(&payload); err != nil {
		return nil, reject(CodeInvalidRequest, "claims cannot be decoded", err)
	}
	ev, err := decodeSET(payload, v.cfg.CriticalSubjectMembers)
	if err != nil {
		return nil, err
	}
	if !IsStreamEvent(ev.Type) && !slices.Contains(v.cfg.EventTypes, ev.Type) {
		return nil, reject(CodeInvalidRequest, "event type not accepted", fmt.Errorf("%w: %q", ErrUnsupportedEvent, truncate(ev.Type, 128)))
	}
	if age := v.cfg.Now().Sub(ev.IssuedAt); age > v.cfg.MaxAge+v.leeway {
		return nil, reject(CodeInvalidRequest, "SET is too old", fmt.Errorf("iat %s", ev.IssuedAt.Format(time.RFC3339)))
	}
	seen, err := v.cfg.Replay.Seen(ctx, ev.Issuer, ev.JTI, v.cfg.MaxAge+2*v.leeway)
	if err != nil {
		return nil, fmt.Errorf("signals: replay check: %w", err)
	}
	if seen {
		return nil, reject(CodeInvalidRequest, "duplicate jti", ErrReplay)
	}
	return ev, nil
}

// joseRejection maps a jose verification error to its RFC 8935 code.
func joseRejection(err error) error {
	switch {
	case errors.Is(err, ErrKeysUnavailable):
		return fmt.Errorf("signals: verify SET: %w", err)
	case errors.Is(err, jose.ErrInvalidOptions):
		return fmt.Errorf("signals: verify SET: %w", err)
	case errors.Is(err, jose.ErrWrongType):
		return reject(CodeInvalidRequest, "not a SET: typ must be secevent+jwt", err)
	case errors.Is(err, jose.ErrUnknownKey), errors.Is(err, jose.ErrAlgorithm), errors.Is(err, jose.ErrUnsupportedKey):
		return reject(CodeInvalidKey, "signing key or algorithm not acceptable", err)
	case errors.Is(err, jose.ErrInvalidSignature):
		return reject(CodeAuthenticationFailed, "signature does not verify", err)
	case errors.Is(err, jose.ErrIssuer):
		return reject(CodeInvalidIssuer, "issuer not accepted", err)
	case errors.Is(err, jose.ErrAudience):
		return reject(CodeInvalidAudience, "audience does not name this receiver", err)
	case errors.Is(err, jose.ErrExpired):
		return reject(CodeInvalidRequest, "SET expired", err)
	case errors.Is(err, jose.ErrIssuedInFuture), errors.Is(err, jose.ErrNotYetValid):
		return reject(CodeInvalidRequest, "SET issued in the future", err)
	}
	return reject(CodeInvalidRequest, "malformed SET", err)
}

// setClaims is the wire form of a SET's claims beyond those jose checks.
type setClaims struct {
	Iss    *string         `json:"iss"`
	Aud    json.RawMessage `json:"aud"`
	JTI    *string         `json:"jti"`
	Iat    json.RawMessage `json:"iat"`
	Sub    json.RawMessage `json:"sub"`
	TXN    *string         `json:"txn"`
	SubID  json.RawMessage `json:"sub_id"`
	Events json.RawMessage `json:"events"`
}

// decodeSET decodes the claims of a SET whose signature, iss, aud and
// times were already checked, and applies the SSF 1.0 rules: jti and iat
// present, no sub, exactly one event, a subject of a known format. It
// does not consult the replay cache. Errors are [*SETError].
func decodeSET(payload []byte, critical []string) (*Event, error) {
	if _, err := objectMembers(payload); err != nil {
		return nil, reject(CodeInvalidRequest, "claims are not a JSON object", err)
	}
	var c setClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, reject(CodeInvalidRequest, "claims have the wrong types", err)
	}
	if c.Iss == nil || *c.Iss == "" {
		return nil, reject(CodeInvalidIssuer, "iss is required", nil)
	}
	if c.JTI == nil || *c.JTI == "" {
		return nil, reject(CodeInvalidRequest, "jti is required", nil)
	}
	if len(c.Iat) == 0 {
		return nil, reject(CodeInvalidRequest, "iat is required", nil)
	}
	iat, err := numericDate(c.Iat)
	if err != nil {
		return nil, reject(CodeInvalidRequest, "iat is not a NumericDate", err)
	}
	if len(c.Sub) > 0 {
		return nil, reject(CodeInvalidRequest, "sub is not allowed in a SET; use sub_id", nil)
	}
	if len(c.Events) == 0 || string(c.Events) == "null" {
		return nil, reject(CodeInvalidRequest, "events is required", nil)
	}
	events, err := objectMembers(c.Events)
	if err != nil {
		return nil, reject(CodeInvalidRequest, "events is not a JSON object", err)
	}
	if len(events) != 1 {
		return nil, reject(CodeInvalidRequest, "events must hold exactly one event", fmt.Errorf("%d events", len(events)))
	}
	ev := &Event{Issuer: *c.Iss, JTI: *c.JTI, IssuedAt: iat}
	if c.TXN != nil {
		ev.TXN = *c.TXN
	}
	if len(c.Aud) > 0 {
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			ev.Audience = []string{one}
		} else if err := json.Unmarshal(c.Aud, &ev.Audience); err != nil {
			return nil, reject(CodeInvalidAudience, "aud is malformed", err)
		}
	}
	var typ string
	var raw json.RawMessage
	for k, v := range events {
		typ, raw = k, v
	}
	legacy, err := decodeEvent(typ, raw, ev)
	if err != nil {
		if errors.Is(err, ErrUnsupportedEvent) {
			return nil, reject(CodeInvalidRequest, "unsupported event type", err)
		}
		return nil, reject(CodeInvalidRequest, "event payload does not conform to its definition", err)
	}
	subRaw := c.SubID
	if len(subRaw) == 0 || string(subRaw) == "null" {
		subRaw = legacy
	}
	if len(subRaw) == 0 || string(subRaw) == "null" {
		return nil, reject(CodeInvalidRequest, "sub_id is required", nil)
	}
	sub, err := parseSubject(subRaw, critical)
	if err != nil {
		desc := "subject identifier is malformed"
		if errors.Is(err, ErrUnknownSubjectFormat) {
			desc = "subject identifier format not supported"
		}
		return nil, reject(CodeInvalidRequest, desc, err)
	}
	ev.Subject = sub
	if IsStreamEvent(ev.Type) && (sub.Format != FormatOpaque || strings.TrimSpace(sub.ID) == "") {
		return nil, reject(CodeInvalidRequest, "stream events need an opaque sub_id naming the stream", nil)
	}
	return ev, nil
}
