package authserver

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// MaxActorDepth caps the nesting of act claims a token exchange may build.
const MaxActorDepth = 8

// party is a verified subject or actor token.
type party struct {
	Subject  string
	Issuer   string
	ClientID string
	// Scopes the token carried; nil when the token type has no scope
	// (ID tokens, JWT-SVIDs).
	Scopes   []string
	Audience []string
	Actor    *oauth.Actor
	MayAct   *oauth.Actor
	AuthTime time.Time
	Details  []byte
	// TokenID is the jti of an access token of this server; empty for
	// other token types.
	TokenID string
	// ExpiresAt is an access token's expiry; zero for other token types.
	ExpiresAt time.Time
}

// grantTokenExchange serves RFC 8693 token exchange. The issued token
// keeps the subject token's sub, names the acting party in act (nesting
// any act the subject token had), has the authenticated client as
// client_id, and never carries more scope than the subject token, the
// client and the resources allow. Impersonation (a token without act) is
// never issued: without an actor_token the client itself is the actor.
// A request for a Transaction Token (requested_token_type txn_token) is
// served by grantTxnToken instead, one for an ID-JAG (id-jag) by
// grantIDJAG.
func (s *Server) grantTokenExchange(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	f := req.form
	if requested, err := f.Get("requested_token_type"); err == nil && requested == oauth.TokenTypeTxnToken {
		resp, err := s.grantTxnToken(ctx, req)
		if err != nil && s.cfg.OnRefuseTxnToken != nil && req.client != nil {
			s.cfg.OnRefuseTxnToken(ctx, req.client.ID, oauth.AsError(err))
		}
		return resp, err
	} else if err == nil && requested == oauth.TokenTypeIDJAG {
		return s.grantIDJAG(ctx, req)
	}
	subjectToken, subjectType, actorToken, actorType, err := exchangeTokens(f)
	if err != nil {
		return nil, err
	}
	requested, err := f.Get("requested_token_type")
	if err != nil {
		return nil, err
	}
	if requested != "" && requested != oauth.TokenTypeAccessToken && requested != oauth.TokenTypeJWT {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "requested_token_type %q is not issued here", truncate(requested, 80))
	}
	resources, err := f.All("resource")
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource has an empty value")
	}
	audiences, err := f.All("audience")
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "audience has an empty value")
	}
	for _, a := range audiences {
		if _, ok := s.resources[a]; !ok {
			return nil, oauth.Errorf(oauth.CodeInvalidTarget, "audience %q is not known to this server", truncate(a, 80))
		}
		if !slices.Contains(resources, a) {
			resources = append(resources, a)
		}
	}

	subject, err := s.verifySubjectToken(ctx, req, subjectToken, subjectType)
	if err != nil {
		return nil, err
	}
	actor := &oauth.Actor{Subject: req.client.ID, ClientID: req.client.ID}
	if actorToken != "" {
		a, err := s.verifyActorToken(ctx, req, actorToken, actorType)
		if err != nil {
			return nil, err
		}
		if a.Subject != req.client.ID {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the actor_token's subject is not the authenticated client")
		}
		actor = &oauth.Actor{Subject: a.Subject, Issuer: a.Issuer, ClientID: req.client.ID}
	}
	if subject.MayAct != nil {
		if subject.MayAct.Subject != actor.Subject || (subject.MayAct.Issuer != "" && subject.MayAct.Issuer != actor.Issuer && subject.MayAct.Issuer != s.issuer) {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the subject token's may_act does not name the actor")
		}
	}
	// The chain is built here from verified tokens only: the new actor,
	// then the actors of the subject token.
	actor.Actor = subject.Actor
	if actor.Depth() > MaxActorDepth {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the delegation chain is longer than %d", MaxActorDepth)
	}

	raw, err := f.Get("scope")
	if err != nil {
		return nil, err
	}
	limit := subject.Scopes
	if limit == nil {
		limit = []string{}
		if req.client.Scopes == nil {
			limit = nil
		}
	}
	scopes, aud, err := s.targetFor(resources, raw, req.client.client, limit)
	if err != nil {
		return nil, err
	}
	details, err := s.authorizationDetails(f)
	if err != nil {
		return nil, err
	}
	if details == nil {
		details = subject.Details
	} else if subject.Details != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details cannot replace the subject token's")
	}
	return s.respond(ctx, req, accessGrant{
		Subject:              subject.Subject,
		ClientID:             req.client.ID,
		Scopes:               scopes,
		Audience:             aud,
		Actor:                actor,
		AuthTime:             subject.AuthTime,
		AuthorizationDetails: details,
		IssuedTokenType:      oauth.TokenTypeAccessToken,
		// Revoking the subject token revokes this one (see lineage.go).
		Parent: subject.TokenID,
	})
}

// verifySubjectToken accepts this server's access tokens and ID tokens
// issued for the client, and JWT-SVIDs of the trust domain addressed to
// this server.
func (s *Server) verifySubjectToken(ctx context.Context, req *tokenRequest, token, typ string) (*party, error) {
	switch typ {
	case oauth.TokenTypeAccessToken:
		if p, foreign, err := s.foreignSubject(ctx, req, token); foreign {
			return p, err
		}
		c, err := s.VerifyAccessToken(ctx, token, "")
		if err != nil {
			if oauth.AsError(err).Code != oauth.CodeInvalidToken {
				// The revocation check could not be made (a store
				// error): server_error, logged, rather than blamed on
				// the request.
				return nil, err
			}
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token: %s", oauth.AsError(err).Description)
		}
		servesAudience := slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(req.client.Serves, a) })
		if !slices.Contains(c.Audience, req.client.ID) && !servesAudience && (c.MayAct == nil || c.MayAct.Subject != req.client.ID) {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token was not issued for this client")
		}
		if c.Confirmation != nil && c.Confirmation.JKT != "" {
			// A DPoP-bound token is only usable with its key; exchanging
			// it would shed the binding.
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token is sender-constrained")
		}
		scopes, err := oauth.ParseScope(c.Scope)
		if err != nil {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token has a malformed scope")
		}
		if scopes == nil {
			scopes = []string{}
		}
		p := &party{Subject: c.Subject, Issuer: c.Issuer, ClientID: c.ClientID, Scopes: scopes,
			Audience: c.Audience, Actor: c.Actor, MayAct: c.MayAct, Details: c.AuthorizationDetails, TokenID: c.ID,
			ExpiresAt: time.Unix(c.ExpiresAt, 0)}
		if c.AuthTime > 0 {
			p.AuthTime = time.Unix(c.AuthTime, 0)
		}
		return p, nil
	case oauth.TokenTypeIDToken:
		t, err := s.verifyOwnIDToken(ctx, token, req.client.ID)
		if err != nil {
			return nil, err
		}
		p := &party{Subject: t.Subject, Issuer: t.Issuer, Audience: t.Audience}
		if at, ok := t.Claims["auth_time"].(float64); ok {
			p.AuthTime = time.Unix(int64(at), 0)
		}
		return p, nil
	case oauth.TokenTypeJWT:
		return s.verifySVIDToken(ctx, token, "subject_token")
	default:
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token_type %q is not accepted", truncate(typ, 80))
	}
}

// verifyActorToken accepts a JWT-SVID addressed to this server, or one of
// this server's access tokens issued to the actor on its own authority.
func (s *Server) verifyActorToken(ctx context.Context, req *tokenRequest, token, typ string) (*party, error) {
	switch typ {
	case oauth.TokenTypeJWT:
		return s.verifySVIDToken(ctx, token, "actor_token")
	case oauth.TokenTypeAccessToken:
		c, err := s.VerifyAccessToken(ctx, token, "")
		if err != nil {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "actor_token: %s", oauth.AsError(err).Description)
		}
		if c.Subject != c.ClientID || c.Actor != nil {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "actor_token must be a token the actor holds on its own authority")
		}
		return &party{Subject: c.Subject, Issuer: c.Issuer}, nil
	default:
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "actor_token_type %q is not accepted", truncate(typ, 80))
	}
}

// verifySVIDToken checks a JWT-SVID whose sole audience is this server,
// used once.
func (s *Server) verifySVIDToken(ctx context.Context, token, param string) (*party, error) {
	if s.cfg.SVIDs == nil {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "%s: JWT-SVIDs are not accepted here", param)
	}
	id, claims, err := s.cfg.SVIDs.ValidateJWTSVID(ctx, token, s.issuer)
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "%s is not a valid JWT-SVID: %s", param, joseReason(err))
	}
	aud := audienceOf(claims["aud"])
	if len(aud) != 1 {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "%s must have this server as its only audience", param)
	}
	jti, _ := claims["jti"].(string)
	exp, _ := claims["exp"].(float64)
	if jti == "" {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "%s has no jti", param)
	}
	if err := s.remember(ctx, "svid:"+id.String()+":"+jti, time.Unix(int64(exp), 0).Add(assertionLeeway)); err != nil {
		if errors.Is(err, dpop.ErrReplay) {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "%s was already used", param)
		}
		return nil, err
	}
	return &party{Subject: id.String(), Issuer: "spiffe://" + id.TrustDomain().Name()}, nil
}

// grantJWTBearer serves the JWT bearer grant (RFC 7523 §2.1): the
// assertion is a JWT-SVID of a hosted agent addressed to this server; the
// token's sub is that agent and its scope is what both the agent and the
// client may have. An ID-JAG (see isIDJAG) is served by grantIDJAGBearer;
// a client of a federated trust domain presents nothing else.
func (s *Server) grantJWTBearer(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	assertion, err := req.form.Require("assertion")
	if err != nil {
		return nil, err
	}
	if s.isIDJAG(assertion) {
		return s.grantIDJAGBearer(ctx, req, assertion)
	}
	if req.client.Kind == kindFederated {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "a client of a federated trust domain presents ID-JAGs only")
	}
	p, err := s.verifySVIDToken(ctx, assertion, "assertion")
	if err != nil {
		oe := oauth.AsError(err)
		return nil, &oauth.Error{Code: oauth.CodeInvalidGrant, Description: oe.Description}
	}
	principal, err := s.clients.lookup(ctx, p.Subject)
	if err != nil || principal.Kind != kindAgent {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the assertion's subject is not a hosted agent")
	}
	if principal.ID != req.client.ID && !req.client.allowsGrant(oauth.GrantJWTBearer) {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "the client may not use jwt-bearer")
	}
	limit := principal.Scopes
	scopes, aud, err := s.target(req.form, req.client.client, limit)
	if err != nil {
		return nil, err
	}
	g := accessGrant{Subject: p.Subject, ClientID: req.client.ID, Scopes: scopes, Audience: aud}
	if principal.ID != req.client.ID {
		g.Actor = &oauth.Actor{Subject: req.client.ID, ClientID: req.client.ID}
	}
	if g.AuthorizationDetails, err = s.authorizationDetails(req.form); err != nil {
		return nil, err
	}
	return s.respond(ctx, req, g)
}

// exchangeTokens reads the subject and actor tokens of a token exchange
// request (RFC 8693 §2.1): the subject token and its type are required,
// the actor token and its type go together.
func exchangeTokens(f oauth.Form) (subjectToken, subjectType, actorToken, actorType string, err error) {
	if subjectToken, err = f.Require("subject_token"); err != nil {
		return "", "", "", "", err
	}
	if subjectType, err = f.Require("subject_token_type"); err != nil {
		return "", "", "", "", err
	}
	if actorToken, err = f.Get("actor_token"); err != nil {
		return "", "", "", "", err
	}
	if actorType, err = f.Get("actor_token_type"); err != nil {
		return "", "", "", "", err
	}
	if (actorToken == "") != (actorType == "") {
		return "", "", "", "", oauth.Errorf(oauth.CodeInvalidRequest, "actor_token and actor_token_type go together")
	}
	return subjectToken, subjectType, actorToken, actorType, nil
}

// verifyOwnIDToken checks a subject_token of type ID token: an ID token
// this server issued to clientID (signature, iss, aud, exp, sub), and not
// an access token in its place.
func (s *Server) verifyOwnIDToken(ctx context.Context, token, clientID string) (*jose.Token, error) {
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:           []jose.Typ{jose.TypJWT},
		AllowMissingTyp: true,
		Algorithms:      []jose.Alg{jose.ES256},
		Keys:            s.keys.publicKey,
		RequireKID:      true,
		Issuer:          s.issuer,
		Audience:        clientID,
		RequireSubject:  true,
		Now:             s.now,
	})
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token is not a valid ID token of this server for this client: %s", joseReason(err))
	}
	if _, isAT := t.Claims["client_id"]; isAT {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token is not an ID token")
	}
	return t, nil
}
