package oauth

// Identity Assertion JWT Authorization Grant (ID-JAG,
// draft-ietf-oauth-identity-assertion-authz-grant, editor's copy -03, as
// digested in SPECS.md §12.2), a profile of identity and authorization
// chaining across domains (draft-ietf-oauth-identity-chaining, SPECS.md
// §12.1): the wire claims, and the client's two steps.

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// IDJAGClaims are the claims of an ID-JAG (SPECS.md §12.2), a JWT whose
// JOSE typ is oauth-id-jag+jwt (jose.TypIDJAG). Not supported here:
// tenant, aud_tenant, aud_sub, acr, amr and authorization_details.
type IDJAGClaims struct {
	// Issuer (iss, REQUIRED) is the issuing authorization server (the
	// IdP, "AS-A").
	Issuer string `json:"iss"`
	// Subject (sub, REQUIRED) is the user, as the IdP names them.
	Subject string `json:"sub"`
	// Audience (aud, REQUIRED) is the issuer identifier of the resource
	// authorization server ("AS-B"), its only value.
	Audience Audience `json:"aud"`
	// ClientID (client_id, REQUIRED) is the client's ID at the resource
	// authorization server.
	ClientID string `json:"client_id"`
	// ID, IssuedAt and ExpiresAt (jti, iat, exp) are REQUIRED.
	ID        string `json:"jti"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
	// Resource (resource, OPTIONAL) holds the granted RFC 8707 resource
	// indicators: one string or an array, like aud.
	Resource Audience `json:"resource,omitempty"`
	// Scope (scope, OPTIONAL) is the granted scope at the resource
	// authorization server.
	Scope string `json:"scope,omitempty"`
	// Actor (act, OPTIONAL, RFC 8693 §4.1) is who acts for the subject.
	Actor *Actor `json:"act,omitempty"`
	// Email (email, OPTIONAL, RECOMMENDED) helps the resource
	// authorization server find the subject.
	Email string `json:"email,omitempty"`
	// AuthTime (auth_time, OPTIONAL) is when the user signed in.
	AuthTime int64 `json:"auth_time,omitempty"`
	// Confirmation (cnf.jkt) binds the grant to the DPoP key the client
	// proved at the IdP: the resource authorization server then wants a
	// proof with that key.
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// GrantAssertionSource returns an authorization grant assertion for the
// JWT bearer grant (RFC 7523 §2.1) at the authorization server whose
// issuer is audience. dpopKey is the key the token request there proves
// possession of (nil for a bearer request): a grant the source binds to
// a key (an ID-JAG with cnf.jkt) must be bound to that one.
type GrantAssertionSource func(ctx context.Context, audience string, dpopKey crypto.Signer) (string, error)

// IDJAGRequest asks an authorization server (the IdP, "AS-A") for an
// ID-JAG by token exchange (SPECS.md §12.2 step 1).
type IDJAGRequest struct {
	// Server is the IdP's metadata.
	Server *ServerMetadata
	// Audience is the issuer identifier of the resource authorization
	// server the grant is for. Empty in a request given to
	// [Client.IDJAGSource], which takes it from the token request.
	Audience string
	// Resource and Scopes are what the client wants at the resource
	// authorization server (RFC 8707 resource, scope); both OPTIONAL.
	Resource string
	Scopes   []string
	// SubjectToken is the user's token at the IdP, of SubjectTokenType
	// (default TokenTypeAccessToken; TokenTypeIDToken for an ID token).
	// SubjectTokenSource, when set instead, gives it when the grant is
	// requested.
	SubjectToken       string
	SubjectTokenType   string
	SubjectTokenSource func(ctx context.Context) (string, error)
}

// IDJAG is a grant issued by [Client.IDJAG]. It is single-use: present
// it once, at the server it names.
type IDJAG struct {
	// Assertion is the ID-JAG.
	Assertion string
	ExpiresAt time.Time
	// Scopes granted, as the response states them.
	Scopes []string
	// JKT is the thumbprint of the DPoP key the grant is bound to
	// (cnf.jkt); "" for an unbound grant.
	JKT string
}

// IDJAG asks the IdP for an ID-JAG: token exchange (RFC 8693) with
// requested_token_type urn:ietf:params:oauth:token-type:id-jag, audience
// the resource authorization server's issuer, the user's token as
// subject_token, and the client authenticated by its own assertion. No
// actor_token is sent: the IdP names the authenticated client as the
// actor. The grant is never cached here (it is single-use).
//
// With dpopKey, and when the IdP advertises its algorithm, the request
// carries a DPoP proof and the IdP must bind the grant to the key
// (cnf.jkt); a grant without that binding is an error (the downgrade
// check of SPECS.md §12.2). Otherwise the grant is unbound.
func (c *Client) IDJAG(ctx context.Context, req IDJAGRequest, dpopKey crypto.Signer) (*IDJAG, error) {
	md := req.Server
	switch {
	case md == nil || md.TokenEndpoint == "" || md.Issuer == "":
		return nil, errors.New("oauth: id-jag: request without the IdP's metadata")
	case req.Audience == "":
		return nil, errors.New("oauth: id-jag: request without an audience")
	case req.Audience == md.Issuer:
		return nil, errors.New("oauth: id-jag: the audience is the IdP itself")
	case (req.SubjectToken == "") == (req.SubjectTokenSource == nil):
		return nil, errors.New("oauth: id-jag: set exactly one of SubjectToken and SubjectTokenSource")
	}
	subject := req.SubjectToken
	if req.SubjectTokenSource != nil {
		var err error
		if subject, err = req.SubjectTokenSource(ctx); err != nil {
			return nil, fmt.Errorf("oauth: id-jag: subject token: %w", err)
		}
		if subject == "" {
			return nil, errors.New("oauth: id-jag: subject token: the source gave none")
		}
	}
	typ := req.SubjectTokenType
	if typ == "" {
		typ = TokenTypeAccessToken
	}
	id, err := c.identity(ctx, md)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":           {GrantTokenExchange},
		"requested_token_type": {TokenTypeIDJAG},
		"audience":             {req.Audience},
		"subject_token":        {subject},
		"subject_token_type":   {typ},
	}
	if err := c.authenticate(ctx, form, md, id); err != nil {
		return nil, fmt.Errorf("oauth: id-jag: %w", err)
	}
	if req.Resource != "" {
		form.Set("resource", req.Resource)
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", FormatScope(req.Scopes))
	}
	key, jkt, err := idjagKey(md, dpopKey)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.post(ctx, md.TokenEndpoint, form, key)
		if err != nil {
			return nil, err
		}
		if resp.err != nil && resp.err.Code == CodeUseDPoPNonce && key != nil && resp.nonce != "" && attempt == 0 {
			if err := c.refreshAssertions(ctx, form, md, id); err != nil {
				return nil, err
			}
			continue
		}
		if resp.err != nil {
			return nil, resp.err
		}
		return c.readIDJAG(resp.token, req, jkt)
	}
}

// idjagKey is the key to prove at the IdP md: dpopKey when md lists its
// algorithm, with its thumbprint.
func idjagKey(md *ServerMetadata, dpopKey crypto.Signer) (crypto.Signer, string, error) {
	if dpopKey == nil {
		return nil, "", nil
	}
	alg, err := jose.AlgorithmForKey(dpopKey.Public())
	if err != nil {
		return nil, "", fmt.Errorf("oauth: id-jag: DPoP key: %w", err)
	}
	listed := false
	for _, a := range md.DPoPSigningAlgValuesSupported {
		listed = listed || a == string(alg)
	}
	if !listed {
		return nil, "", nil
	}
	jkt, err := jose.Thumbprint(dpopKey.Public())
	if err != nil {
		return nil, "", fmt.Errorf("oauth: id-jag: DPoP key: %w", err)
	}
	return dpopKey, jkt, nil
}

// readIDJAG checks the IdP's answer (SPECS.md §12.2): an ID-JAG as
// access_token, issued_token_type id-jag, token_type N_A, addressed to
// the audience asked for, and bound to jkt when a proof was sent.
func (c *Client) readIDJAG(tr *TokenResponse, req IDJAGRequest, jkt string) (*IDJAG, error) {
	if tr.AccessToken == "" || tr.IssuedTokenType != TokenTypeIDJAG || !strings.EqualFold(tr.TokenType, TokenTypeNA) {
		return nil, fmt.Errorf("oauth: id-jag: the response is not an ID-JAG (issued_token_type %q, token_type %q)",
			truncate(tr.IssuedTokenType, 80), truncate(tr.TokenType, 20))
	}
	claims, err := peekIDJAG(tr.AccessToken)
	if err != nil {
		return nil, err
	}
	// The client reads what it was given to check that it is what it
	// asked for; the resource authorization server verifies it.
	switch {
	case len(claims.Audience) != 1 || claims.Audience[0] != req.Audience:
		return nil, fmt.Errorf("oauth: id-jag: the grant is addressed to %q, not %q", []string(claims.Audience), req.Audience)
	case claims.Issuer != req.Server.Issuer:
		return nil, fmt.Errorf("oauth: id-jag: the grant was issued by %q, not %q", claims.Issuer, req.Server.Issuer)
	case jkt != "" && (claims.Confirmation == nil || claims.Confirmation.JKT != jkt):
		return nil, errors.New("oauth: id-jag: the IdP did not bind the grant to the DPoP key proved (cnf.jkt)")
	case jkt == "" && claims.Confirmation != nil:
		return nil, errors.New("oauth: id-jag: the grant is bound to a key the client did not prove")
	}
	scopes, err := ParseScope(tr.Scope)
	if err != nil {
		return nil, fmt.Errorf("oauth: id-jag: response scope: %w", err)
	}
	if tr.Scope == "" {
		scopes = req.Scopes
	}
	if claims.ExpiresAt <= 0 {
		return nil, errors.New("oauth: id-jag: the grant has no exp")
	}
	exp := time.Unix(claims.ExpiresAt, 0)
	if tr.ExpiresIn > 0 {
		if e := c.cfg.Now().Add(time.Duration(tr.ExpiresIn) * time.Second); e.Before(exp) {
			exp = e
		}
	}
	g := &IDJAG{Assertion: tr.AccessToken, ExpiresAt: exp, Scopes: scopes}
	if claims.Confirmation != nil {
		g.JKT = claims.Confirmation.JKT
	}
	return g, nil
}

// peekIDJAG decodes an ID-JAG's header and claims without checking the
// signature (which is for the resource authorization server to verify):
// the typ must be oauth-id-jag+jwt.
func peekIDJAG(token string) (*IDJAGClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > jose.DefaultMaxTokenSize {
		return nil, errors.New("oauth: id-jag: the grant is not a compact JWS")
	}
	var hdr struct {
		Typ string `json:"typ"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &hdr) != nil || !jose.TypIDJAG.Matches(hdr.Typ) {
		return nil, errors.New("oauth: id-jag: the grant's typ is not oauth-id-jag+jwt")
	}
	var c IDJAGClaims
	raw, err = base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return nil, errors.New("oauth: id-jag: the grant's claims are malformed")
	}
	return &c, nil
}

// IDJAGSource is the first step of the chain as a [GrantAssertionSource]
// for [TokenRequest.GrantAssertion]: each call asks the IdP (req.Server)
// for a fresh ID-JAG for the authorization server the token request is
// for (req.Audience, when set, must be that server), bound to the DPoP key
// of the token request when the IdP takes it. c is the client at the IdP;
// the token request may go through another Client (the client's
// registration at the resource authorization server).
func (c *Client) IDJAGSource(req IDJAGRequest) GrantAssertionSource {
	return func(ctx context.Context, audience string, dpopKey crypto.Signer) (string, error) {
		if req.Audience != "" && req.Audience != audience {
			return "", fmt.Errorf("oauth: id-jag: the grant is for %q, the token request for %q", req.Audience, audience)
		}
		r := req
		r.Audience = audience
		g, err := c.IDJAG(ctx, r, dpopKey)
		if err != nil {
			return "", err
		}
		return g.Assertion, nil
	}
}
