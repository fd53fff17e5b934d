package authserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// userinfo is the UserInfo response (OpenID Connect Core §5.3.2).
type userinfo struct {
	Subject string `json:"sub"`
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
}

// handleUserinfo serves the UserInfo endpoint (OpenID Connect Core §5.3)
// for access tokens of a signed-in user whose audience includes this
// server and whose scope includes openid. Errors follow RFC 6750 §3 and,
// for DPoP-bound tokens, RFC 9449 §7.1.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "the method must be GET or POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	scheme, token, err := accessTokenFrom(r)
	if err != nil {
		s.challenge(w, r, scheme, err)
		return
	}
	if token == "" {
		// No credentials: a challenge without an error code (RFC 6750 §3.1).
		s.challenge(w, r, "", nil)
		return
	}
	claims, err := s.VerifyAccessToken(ctx, token, s.issuer)
	if err != nil {
		s.challenge(w, r, scheme, err)
		return
	}
	switch cnf := claims.Confirmation; {
	case cnf != nil && cnf.JKT != "":
		if scheme != oauth.TokenTypeDPoP {
			s.challenge(w, r, oauth.TokenTypeDPoP, oauth.Errorf(oauth.CodeInvalidToken, "the access token is DPoP-bound; use the DPoP scheme"))
			return
		}
		if _, err := s.checkDPoP(ctx, r, token, cnf.JKT); err != nil {
			s.challenge(w, r, scheme, err)
			return
		}
	case scheme == oauth.TokenTypeDPoP:
		s.challenge(w, r, scheme, oauth.Errorf(oauth.CodeInvalidToken, "the access token is not DPoP-bound"))
		return
	case cnf != nil && cnf.X5TS256 != "":
		if !certMatches(r, cnf.X5TS256) {
			s.challenge(w, r, scheme, oauth.Errorf(oauth.CodeInvalidToken, "the access token is bound to another client certificate"))
			return
		}
	}
	if claims.AuthTime == 0 {
		// Tokens a client got on its own authority have no user.
		s.challenge(w, r, scheme, oauth.Errorf(oauth.CodeInvalidToken, "the access token was not issued for a signed-in user"))
		return
	}
	scopes, err := oauth.ParseScope(claims.Scope)
	if err != nil || !slices.Contains(scopes, "openid") {
		s.challenge(w, r, scheme, oauth.Errorf(oauth.CodeInsufficientScope, "the access token lacks the openid scope"))
		return
	}
	if _, ok := s.cfg.Users.Lookup(claims.Subject); !ok {
		s.challenge(w, r, scheme, oauth.Errorf(oauth.CodeInvalidToken, "the access token's user is not known"))
		return
	}
	resp := userinfo{Subject: claims.Subject}
	resp.Name, resp.Email = s.profile(claims.Subject, scopes)
	oauth.WriteJSON(w, http.StatusOK, resp)
}

// accessTokenFrom reads the access token from the Authorization header
// (RFC 6750 §2.1, RFC 9449 §7.1) and returns the scheme as Bearer or DPoP.
// No header is no token and no error.
func accessTokenFrom(r *http.Request) (scheme, token string, err error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", "", nil
	}
	if len(h) > 1 {
		return "", "", oauth.Errorf(oauth.CodeInvalidRequest, "more than one Authorization header")
	}
	name, value, _ := strings.Cut(h[0], " ")
	switch {
	case strings.EqualFold(name, oauth.TokenTypeBearer):
		scheme = oauth.TokenTypeBearer
	case strings.EqualFold(name, oauth.TokenTypeDPoP):
		scheme = oauth.TokenTypeDPoP
	default:
		return "", "", oauth.Errorf(oauth.CodeInvalidRequest, "the Authorization scheme must be Bearer or DPoP")
	}
	token = strings.TrimLeft(value, " ")
	if token == "" || !validToken68(token) {
		return scheme, "", oauth.Errorf(oauth.CodeInvalidRequest, "the Authorization header has no well-formed token")
	}
	return scheme, token, nil
}

// validToken68 reports whether t has the token68 syntax of RFC 9110
// §11.2, which RFC 6750 §2.1 uses for bearer tokens.
func validToken68(t string) bool {
	if len(t) > 16<<10 {
		return false
	}
	body := strings.TrimRight(t, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// certMatches reports whether the request's client certificate has the
// SHA-256 thumbprint x5t (RFC 8705 §3).
func certMatches(r *http.Request, x5t string) bool {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(x5t)) == 1
}

// challenge writes a resource error with its WWW-Authenticate challenge
// (RFC 6750 §3, RFC 9449 §7.1). A nil err is the bare challenge for a
// request without credentials; scheme picks the challenge's scheme, and
// without one both schemes are offered.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, scheme string, err error) {
	status := http.StatusUnauthorized
	var params []string
	if err != nil {
		oe := oauth.AsError(err)
		if oe.Code == oauth.CodeServerError {
			s.log.ErrorContext(r.Context(), "userinfo failed", "err", err)
			oauth.WriteError(w, oe)
			return
		}
		params = append(params, `error="`+oe.Code+`"`)
		if oe.Description != "" {
			params = append(params, `error_description="`+oe.Description+`"`)
		}
		switch oe.Code {
		case oauth.CodeInsufficientScope:
			status = http.StatusForbidden
			params = append(params, `scope="openid"`)
		case oauth.CodeInvalidRequest:
			status = http.StatusBadRequest
		case oauth.CodeUseDPoPNonce:
			s.setDPoPNonce(r.Context(), w)
		}
	}
	bearer := oauth.TokenTypeBearer
	if len(params) > 0 {
		bearer += " " + strings.Join(params, ", ")
	}
	algs := `algs="` + strings.Join(algNames(dpopAlgorithms), " ") + `"`
	dpopChallenge := oauth.TokenTypeDPoP + " " + strings.Join(append(params, algs), ", ")
	h := w.Header()
	if scheme != oauth.TokenTypeDPoP {
		h.Add("WWW-Authenticate", bearer)
	}
	if scheme != oauth.TokenTypeBearer {
		h.Add("WWW-Authenticate", dpopChallenge)
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}
