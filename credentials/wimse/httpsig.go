package wimse

// The WIMSE HTTP Message Signatures profile (draft-ietf-wimse-http-signature-07
// as digested in SPECS.md §8.4) of RFC 9421, with RFC 9530 Content-Digest.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// SignatureTag is the value of the tag signature parameter that marks a
// WIMSE workload-to-workload signature (SPECS.md §8.4).
const SignatureTag = "wimse-workload-to-workload"

// SignatureLabel is the label this package gives its signature in
// Signature-Input and Signature. A verifier finds the WIMSE signature by
// its tag, not by its label.
const SignatureLabel = "wimse"

// Signature parameters of the profile.
const (
	paramCreated      = "created"
	paramExpires      = "expires"
	paramNonce        = "nonce"
	paramTag          = "tag"
	paramAudience     = "wimse-aud"
	paramSignResponse = "wimse-sign-response"
	paramKeyID        = "keyid"
	paramAlg          = "alg"
)

// Covered components.
const (
	compMethod        = "@method"
	compRequestTarget = "@request-target"
	compPath          = "@path"
	compQuery         = "@query"
	compWIT           = "workload-identity-token"
)

// requiredIfPresent are the request fields the profile requires to be
// covered when the request has them (SPECS.md §8.4).
var requiredIfPresent = []string{"content-type", "content-digest", "authorization", "txn-token"}

// SignOptions are the optional inputs of [SignRequest].
type SignOptions struct {
	// Audience is the wimse-aud parameter; empty means [TargetURI] of the
	// request URL.
	Audience string
	// Lifetime is expires minus created; zero means DefaultProofLifetime.
	// At most MaxProofLifetime.
	Lifetime time.Duration
	// Headers names further request headers to cover when present (for
	// example the other context tokens a server binds).
	Headers []string
	// MaxBodySize caps the body read to compute Content-Digest; zero
	// means DefaultMaxBodySize.
	MaxBodySize int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SignRequest signs req in place with the WIMSE HTTP Message Signatures
// profile, using key, the private key of wit's cnf.jwk, with the
// algorithm cnf.jwk.alg names (RFC 9421 §3.3.7).
//
// It sets Workload-Identity-Token to wit; reads the body, if any, puts it
// back (with GetBody) and sets Content-Digest to its sha-256 (RFC 9530),
// removing any Content-Digest when the body is empty; then signs
// @method, @request-target, workload-identity-token and each of
// content-type, content-digest, authorization, txn-token and opts.Headers
// present, with the parameters created, expires, a random nonce, tag
// "wimse-workload-to-workload" and wimse-aud, and no keyid or alg; and
// sets Signature-Input and Signature under the label "wimse", replacing
// any earlier ones. Call it last, after every covered header is set.
func SignRequest(ctx context.Context, req *http.Request, wit string, key crypto.Signer, opts SignOptions) error {
	p, err := inspectOwnWIT(wit, key)
	if err != nil {
		return fmt.Errorf("wimse: sign request: %w", err)
	}
	return signRequest(ctx, req, wit, key, p, opts)
}

func signRequest(ctx context.Context, req *http.Request, wit string, key crypto.Signer, p *presented, opts SignOptions) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wimse: sign request: %w", err)
	}
	if req == nil || req.URL == nil {
		return fmt.Errorf("%w: sign request: no request URL", ErrConfig)
	}
	aud := opts.Audience
	if aud == "" {
		aud = TargetURI(req.URL)
	}
	if aud == "" || !validSFString(aud) {
		return fmt.Errorf("%w: sign request: audience %q", ErrConfig, truncate(aud))
	}
	lifetime := opts.Lifetime
	if lifetime == 0 {
		lifetime = DefaultProofLifetime
	}
	if lifetime < time.Second || lifetime > MaxProofLifetime {
		return fmt.Errorf("%w: sign request: lifetime %s outside [1s, %s]", ErrConfig, lifetime, MaxProofLifetime)
	}
	maxBody := opts.MaxBodySize
	if maxBody <= 0 {
		maxBody = DefaultMaxBodySize
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	body, err := bufferBody(req, maxBody)
	if err != nil {
		return err
	}
	if len(body) > 0 {
		req.Header.Set(HeaderContentDigest, ContentDigest(body))
	} else {
		req.Header.Del(HeaderContentDigest)
	}
	req.Header.Set(HeaderWIT, wit)

	names := []string{compMethod, compRequestTarget, compWIT}
	for _, h := range append(slices.Clone(requiredIfPresent), opts.Headers...) {
		name := strings.ToLower(strings.TrimSpace(h))
		if !isToken(name) || slices.Contains(names, name) || len(req.Header.Values(name)) == 0 {
			continue
		}
		names = append(names, name)
	}
	items := make([]sfItem, len(names))
	for i, n := range names {
		items[i] = sfItem{bare: sfStringItem(n)}
	}
	created := now().Unix()
	params := sfParams{
		{key: paramCreated, value: sfIntItem(created)},
		{key: paramExpires, value: sfIntItem(created + int64(lifetime/time.Second))},
		{key: paramNonce, value: sfStringItem(rand.Text())},
		{key: paramTag, value: sfStringItem(SignatureTag)},
		{key: paramAudience, value: sfStringItem(aud)},
	}
	sigParams := serializeInnerList(items, params)
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	src := componentSource{method: method, target: req.URL.RequestURI(), header: req.Header}
	base, err := signatureBase(src, names, sigParams)
	if err != nil {
		return fmt.Errorf("%w: sign request: %w", ErrConfig, err)
	}
	sig, err := signRaw(key, p.alg, []byte(base))
	if err != nil {
		return fmt.Errorf("wimse: sign request: %w", err)
	}
	req.Header.Set(HeaderSignatureInput, SignatureLabel+"="+sigParams)
	var b strings.Builder
	b.WriteString(SignatureLabel + "=")
	serializeBare(&b, sfBare{kind: sfBytes, bytes: sig})
	req.Header.Set(HeaderSignature, b.String())
	return nil
}

// bufferBody reads a client request's body (at most maxBody bytes), and
// puts it back so that it can be sent and resent.
func bufferBody(req *http.Request, maxBody int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	closeErr := req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("wimse: sign request: read body: %w", err)
	}
	if closeErr != nil {
		return nil, fmt.Errorf("wimse: sign request: close body: %w", closeErr)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("%w: sign request: body exceeds %d bytes", ErrBodyTooLarge, maxBody)
	}
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return nil, nil
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, nil
}

// componentSource is what covered component values are read from.
type componentSource struct {
	method string
	target string // request-target in origin form: path and query
	header http.Header
}

// value returns the value of one covered component (RFC 9421 §2.1,
// §2.2). Only the derived components @method, @request-target, @path and
// @query, and header fields without parameters, are supported.
func (s componentSource) value(name string) (string, error) {
	switch name {
	case compMethod:
		return s.method, nil
	case compRequestTarget:
		return s.target, nil
	case compPath:
		path, _, _ := strings.Cut(s.target, "?")
		if path == "" {
			path = "/"
		}
		return path, nil
	case compQuery:
		_, query, _ := strings.Cut(s.target, "?")
		return "?" + query, nil
	}
	if strings.HasPrefix(name, "@") {
		return "", fmt.Errorf("derived component %q is not supported", truncate(name))
	}
	if !isToken(name) || strings.ToLower(name) != name {
		return "", fmt.Errorf("component %q is not a lowercase field name", truncate(name))
	}
	vs := s.header.Values(name)
	if len(vs) == 0 {
		return "", fmt.Errorf("covered field %q is not in the message", name)
	}
	return fieldValue(vs), nil
}

// signatureBase builds the signature base (RFC 9421 §2.5): one line per
// covered component, then the @signature-params line without a trailing
// newline.
func signatureBase(src componentSource, names []string, sigParams string) (string, error) {
	var b strings.Builder
	for _, n := range names {
		v, err := src.value(n)
		if err != nil {
			return "", err
		}
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("component %q has a line break", n)
		}
		b.WriteByte('"')
		b.WriteString(n)
		b.WriteString(`": `)
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(sigParams)
	return b.String(), nil
}

// Signature is a verified WIMSE HTTP message signature.
type Signature struct {
	// Label is the signature's label in Signature-Input.
	Label string
	// Components lists the covered components in order.
	Components []string
	// Created and Expires are the created and expires parameters.
	Created time.Time
	Expires time.Time
	// Nonce is the nonce parameter.
	Nonce string
	// Audience is the wimse-aud parameter.
	Audience string
}

// VerifySignature checks the WIMSE HTTP message signature of r, made with
// the key of wit (which [Verifier.VerifyWIT] has verified), for audience
// (normally [Verifier.Audience] of r) (SPECS.md §8.4, §9).
//
// It parses Signature-Input and Signature as RFC 8941 dictionaries and
// picks the one signature whose tag is "wimse-workload-to-workload" (none,
// or several, is refused; the label does not matter). It refuses the keyid
// and alg parameters; requires created, expires, nonce and wimse-aud;
// requires @method, @request-target (or both @path and @query) and
// workload-identity-token to be covered, and content-type,
// content-digest, authorization, txn-token and the configured other-token
// headers when the request has them; checks the time window
// ([ErrNotYetValid], [ErrExpired], at most Config.MaxProofLifetime);
// wimse-aud ([ErrWrongAudience]); the signature over the base rebuilt from
// r with wit.Key and wit.Alg ([ErrSignature]); the body against
// Content-Digest, which must be present when there is a body
// ([ErrContentDigest], [ErrBodyTooLarge]); and last the nonce
// ([ErrReplayed]). A request for a signed response (wimse-sign-response)
// wraps [ErrUnsupported]: this package does not sign responses, and the
// profile forbids an unsigned success then.
//
// r.Body is read (up to Config.MaxBodySize) and replaced by a reader over
// the same bytes, so the handler still sees the body. Errors wrap
// [ErrInvalidProof], except a failure of the replay cache itself and a WIT
// that has expired since it was verified ([ErrInvalidWIT], [ErrExpired]).
func (v *Verifier) VerifySignature(r *http.Request, wit *WIT, audience string) (*Signature, error) {
	ctx := r.Context()
	if wit == nil || wit.Key == nil || wit.Alg == "" {
		return nil, fmt.Errorf("%w: verify signature: no verified WIT", ErrConfig)
	}
	if audience == "" {
		return nil, fmt.Errorf("%w: verify signature: no expected audience", ErrConfig)
	}
	now := v.now()
	if !now.Before(wit.ExpiresAt.Add(v.leeway)) {
		return nil, witError(ErrExpired, "wit expired at %s", wit.ExpiresAt.UTC().Format(time.RFC3339))
	}
	label, items, params, sig, err := findWIMSESignature(r.Header)
	if err != nil {
		return nil, err
	}
	s := &Signature{Label: label}
	if err := readSignatureParams(params, s); err != nil {
		return nil, err
	}
	if s.Components, err = coveredComponents(items); err != nil {
		return nil, err
	}
	if err := v.checkCoverage(r.Header, s.Components); err != nil {
		return nil, err
	}
	switch {
	case s.Created.After(now.Add(v.leeway)):
		return nil, proofError(ErrNotYetValid, "signature created in the future")
	case !now.Before(s.Expires.Add(v.leeway)):
		return nil, proofError(ErrExpired, "signature expired")
	case s.Expires.Sub(s.Created) > v.maxLifetime:
		return nil, proofError(ErrExpired, "signature lifetime beyond %s", v.maxLifetime)
	}
	if !audienceMatches(s.Audience, audience) {
		return nil, proofError(ErrWrongAudience, "wimse-aud %q, want %q", truncate(s.Audience), truncate(audience))
	}
	if err := keyFitsAlg(wit.Alg, wit.Key); err != nil {
		return nil, fmt.Errorf("%w: verify signature: %w", ErrConfig, err)
	}
	src := componentSource{method: r.Method, target: requestTarget(r), header: r.Header}
	base, err := signatureBase(src, s.Components, serializeInnerList(items, params))
	if err != nil {
		return nil, proofError(nil, "%v", err)
	}
	if !verifyRaw(wit.Key, wit.Alg, []byte(base), sig) {
		return nil, proofError(ErrSignature, "http message signature does not verify with the WIT key")
	}
	if err := v.checkBody(r); err != nil {
		return nil, err
	}
	if err := v.checkReplay(ctx, "sig", wit, s.Nonce, s.Expires); err != nil {
		return nil, err
	}
	if b, ok := params.get(paramSignResponse); ok && b.flag {
		return nil, proofError(ErrUnsupported, "a signed response was requested")
	}
	return s, nil
}

// findWIMSESignature returns the signature whose tag is the WIMSE tag:
// its label, covered components, parameters and signature bytes.
func findWIMSESignature(h http.Header) (string, []sfItem, sfParams, []byte, error) {
	inputs := h.Values(HeaderSignatureInput)
	if len(inputs) == 0 {
		return "", nil, nil, nil, proofError(nil, "no Signature-Input header")
	}
	dict, err := parseDictionary(joinField(inputs))
	if err != nil {
		return "", nil, nil, nil, proofError(nil, "Signature-Input: %v", err)
	}
	var found *sfMember
	for i := range dict {
		tag, ok := dict[i].params.get(paramTag)
		if !ok || tag.kind != sfString || tag.text != SignatureTag {
			continue
		}
		if found != nil {
			return "", nil, nil, nil, proofError(nil, "more than one signature with the WIMSE tag")
		}
		found = &dict[i]
	}
	if found == nil {
		return "", nil, nil, nil, proofError(nil, "no signature with tag %q", SignatureTag)
	}
	if !found.inner {
		return "", nil, nil, nil, proofError(nil, "Signature-Input %q is not an inner list", found.key)
	}
	sigs, err := parseDictionary(joinField(h.Values(HeaderSignature)))
	if err != nil {
		return "", nil, nil, nil, proofError(nil, "Signature: %v", err)
	}
	for _, m := range sigs {
		if m.key != found.key {
			continue
		}
		if m.inner || m.item.kind != sfBytes {
			return "", nil, nil, nil, proofError(nil, "Signature %q is not a byte sequence", m.key)
		}
		return found.key, found.items, found.params, m.item.bytes, nil
	}
	return "", nil, nil, nil, proofError(nil, "no Signature for label %q", found.key)
}

// readSignatureParams checks the signature parameters against the
// profile and reads them into s.
func readSignatureParams(params sfParams, s *Signature) error {
	for _, forbidden := range []string{paramKeyID, paramAlg} {
		if _, ok := params.get(forbidden); ok {
			return proofError(nil, "signature parameter %q is not allowed", forbidden)
		}
	}
	created, ok := params.get(paramCreated)
	if !ok || created.kind != sfInteger || created.num < 0 {
		return proofError(nil, "created missing or not a non-negative integer")
	}
	expires, ok := params.get(paramExpires)
	if !ok || expires.kind != sfInteger || expires.num < created.num {
		return proofError(nil, "expires missing, not an integer, or before created")
	}
	nonce, ok := params.get(paramNonce)
	if !ok || nonce.kind != sfString || nonce.text == "" || len(nonce.text) > maxProofIDLen {
		return proofError(nil, "nonce missing, empty, or longer than %d bytes", maxProofIDLen)
	}
	aud, ok := params.get(paramAudience)
	if !ok || aud.kind != sfString || aud.text == "" {
		return proofError(nil, "wimse-aud missing or not a string")
	}
	if b, ok := params.get(paramSignResponse); ok && b.kind != sfBoolean {
		return proofError(nil, "wimse-sign-response is not a boolean")
	}
	s.Created = time.Unix(created.num, 0).UTC()
	s.Expires = time.Unix(expires.num, 0).UTC()
	s.Nonce = nonce.text
	s.Audience = aud.text
	return nil
}

// coveredComponents returns the covered component names: Strings without
// parameters (no ;sf, ;key, ;bs, ;req or ;tr), each named once.
func coveredComponents(items []sfItem) ([]string, error) {
	names := make([]string, 0, len(items))
	for _, it := range items {
		if it.bare.kind != sfString {
			return nil, proofError(nil, "covered component is not a string")
		}
		if len(it.params) > 0 {
			return nil, proofError(nil, "component parameters on %q are not supported", truncate(it.bare.text))
		}
		if slices.Contains(names, it.bare.text) {
			return nil, proofError(nil, "component %q covered twice", truncate(it.bare.text))
		}
		names = append(names, it.bare.text)
	}
	return names, nil
}

// checkCoverage checks that the signature covers every component the
// profile requires (SPECS.md §8.4).
func (v *Verifier) checkCoverage(h http.Header, names []string) error {
	has := func(n string) bool { return slices.Contains(names, n) }
	if !has(compMethod) {
		return proofError(nil, "signature does not cover %s", compMethod)
	}
	if !has(compRequestTarget) && !(has(compPath) && has(compQuery)) {
		return proofError(nil, "signature covers neither @request-target nor @path and @query")
	}
	if !has(compWIT) {
		return proofError(nil, "signature does not cover %s", compWIT)
	}
	for _, f := range append(slices.Clone(requiredIfPresent), v.otherTokens...) {
		if len(h.Values(f)) > 0 && !has(f) {
			return proofError(nil, "signature does not cover %s, which the request carries", f)
		}
	}
	return nil
}

// checkBody reads the request body, puts it back, and checks it against
// Content-Digest (RFC 9530). A body without Content-Digest is refused.
func (v *Verifier) checkBody(r *http.Request) error {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, v.maxBody+1))
		_ = r.Body.Close()
		if err != nil {
			return proofError(nil, "read body: %v", err)
		}
		if int64(len(b)) > v.maxBody {
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{}))
			return proofError(ErrBodyTooLarge, "body exceeds %d bytes", v.maxBody)
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	digests := r.Header.Values(HeaderContentDigest)
	if len(digests) == 0 {
		if len(body) > 0 {
			return proofError(ErrContentDigest, "request has a body but no Content-Digest")
		}
		return nil
	}
	return checkContentDigest(joinField(digests), body)
}

// errReader fails every read: what remains of a body too large to verify.
type errReader struct{}

func (errReader) Read([]byte) (int, error) {
	return 0, fmt.Errorf("%w: body not verified", ErrBodyTooLarge)
}
