package oauth

import (
	"encoding/json"
	"slices"
)

// TokenResponse is a successful token response (RFC 6749 §5.1, RFC 8693
// §2.2.1, RFC 9396 §7).
type TokenResponse struct {
	AccessToken          string          `json:"access_token"`
	IssuedTokenType      string          `json:"issued_token_type,omitempty"`
	TokenType            string          `json:"token_type"`
	ExpiresIn            int64           `json:"expires_in,omitempty"`
	RefreshToken         string          `json:"refresh_token,omitempty"`
	Scope                string          `json:"scope,omitempty"`
	IDToken              string          `json:"id_token,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
}

// Actor is the act (and may_act) claim of RFC 8693 §4.1 and §4.4: the
// party acting for the subject, with the prior actors nested.
type Actor struct {
	Subject  string `json:"sub"`
	Issuer   string `json:"iss,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Actor    *Actor `json:"act,omitempty"`
}

// Depth is the number of actors in the chain.
func (a *Actor) Depth() int {
	n := 0
	for ; a != nil; a = a.Actor {
		n++
	}
	return n
}

// Confirmation is the cnf claim (RFC 7800) as RFC 9449 §6.1 (jkt) and RFC
// 8705 §3.1 (x5t#S256) use it.
type Confirmation struct {
	JKT     string `json:"jkt,omitempty"`
	X5TS256 string `json:"x5t#S256,omitempty"`
}

// AccessTokenClaims are the claims of a JWT access token (RFC 9068 §2.2)
// with the delegation, binding and authorization-details claims the host
// uses.
type AccessTokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	ClientID  string   `json:"client_id"`
	IssuedAt  int64    `json:"iat"`
	ExpiresAt int64    `json:"exp"`
	NotBefore int64    `json:"nbf,omitempty"`
	ID        string   `json:"jti"`
	Scope     string   `json:"scope,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`

	Actor                *Actor          `json:"act,omitempty"`
	MayAct               *Actor          `json:"may_act,omitempty"`
	Confirmation         *Confirmation   `json:"cnf,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	// SubjectID (sub_id, RFC 9493 §4.1) names the subject in the issuer
	// that asserted it, when that is not this token's issuer: a token
	// issued for an ID-JAG carries the ID-JAG's iss and sub here.
	SubjectID *SubjectID `json:"sub_id,omitempty"`
}

// SubjectID is a subject identifier (RFC 9493 §3) of the iss_sub format
// (§3.2.3): the subject sub as issuer iss knows it. Other formats are not
// used here.
type SubjectID struct {
	Format  string `json:"format"`
	Issuer  string `json:"iss,omitempty"`
	Subject string `json:"sub,omitempty"`
}

// SubjectFormatIssSub is the iss_sub subject identifier format (RFC 9493
// §3.2.3).
const SubjectFormatIssSub = "iss_sub"

// Parties are the parties a token names, each once: its subject, its
// client, and every actor of its delegation chain (act), outermost
// first. Revoking any of them (a signed-out user, a quarantined agent)
// ends the token.
func (c *AccessTokenClaims) Parties() []string {
	out := make([]string, 0, 2+c.Actor.Depth())
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(c.Subject)
	add(c.ClientID)
	for a := c.Actor; a != nil; a = a.Actor {
		add(a.Subject)
	}
	return out
}

// Audience is the aud claim: one string or an array (RFC 7519 §4.1.3). It
// is written as a string when it holds one value.
type Audience []string

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Audience) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// IntrospectionResponse is an RFC 7662 §2.2 response. An inactive token
// is {"active":false} and nothing else.
type IntrospectionResponse struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	NotBefore int64    `json:"nbf,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  Audience `json:"aud,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	ID        string   `json:"jti,omitempty"`

	Actor                *Actor          `json:"act,omitempty"`
	Confirmation         *Confirmation   `json:"cnf,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	SubjectID            *SubjectID      `json:"sub_id,omitempty"`
}
