package authserver

import (
	"context"
	"slices"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TokenIssued is the result [Config.OnTokenRequest] is given for a token
// request the server answered with a token.
const TokenIssued = "issued"

// tokenGrants are the grant types the token endpoint knows: the only
// values OnTokenRequest is given as a grant, so that what a client sends
// cannot grow the set of values an observer keeps.
var tokenGrants = []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantClientCredentials,
	oauth.GrantTokenExchange, oauth.GrantJWTBearer, oauth.GrantCIBA}

// TokenGrants returns the grant types [Config.OnTokenRequest] may be
// given, besides the empty one (a request that named none of them).
func TokenGrants() []string { return slices.Clone(tokenGrants) }

// observeToken tells Config.OnTokenRequest, when set, of a token request's
// grant and result: TokenIssued, or the OAuth error code of err.
func (s *Server) observeToken(ctx context.Context, grant string, err error) {
	if s.cfg.OnTokenRequest == nil {
		return
	}
	if !slices.Contains(tokenGrants, grant) {
		grant = ""
	}
	result := TokenIssued
	if err != nil {
		result = oauth.AsError(err).Code
	}
	s.cfg.OnTokenRequest(ctx, grant, result)
}
