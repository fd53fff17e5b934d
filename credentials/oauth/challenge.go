package oauth

import (
	"errors"
	"strings"
)

// AuthChallenge is one challenge of a WWW-Authenticate header (RFC 9110
// §11.6.1): a scheme and its parameters. Parameter names are lowercased;
// values are unquoted.
type AuthChallenge struct {
	Scheme string
	Params map[string]string
}

// Param returns a parameter's value.
func (c AuthChallenge) Param(name string) string { return c.Params[strings.ToLower(name)] }

// ErrMalformedChallenge reports a WWW-Authenticate header that does not
// parse.
var ErrMalformedChallenge = errors.New("oauth: malformed WWW-Authenticate challenge")

// maxChallengeBytes caps the headers ParseChallenges reads.
const maxChallengeBytes = 8 << 10

// ParseChallenges parses every WWW-Authenticate header value into its
// challenges ("Bearer resource_metadata=\"…\", scope=\"a b\", DPoP
// algs=\"ES256\"" is two). token68 challenges keep their value under the
// empty parameter name.
func ParseChallenges(headers []string) ([]AuthChallenge, error) {
	total := 0
	var out []AuthChallenge
	for _, h := range headers {
		total += len(h)
		if total > maxChallengeBytes {
			return nil, ErrMalformedChallenge
		}
		cs, err := parseChallengeHeader(h)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

type challengeLexer struct {
	s string
	i int
}

func (l *challengeLexer) skipSpace() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

func (l *challengeLexer) token() string {
	start := l.i
	for l.i < len(l.s) && isTokenChar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func (l *challengeLexer) quoted() (string, error) {
	// at '"'
	l.i++
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == '"':
			l.i++
			return b.String(), nil
		case c == '\\' && l.i+1 < len(l.s):
			b.WriteByte(l.s[l.i+1])
			l.i += 2
		case c < 0x20 && c != '\t':
			return "", ErrMalformedChallenge
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	return "", ErrMalformedChallenge
}

func parseChallengeHeader(h string) ([]AuthChallenge, error) {
	l := &challengeLexer{s: h}
	var out []AuthChallenge
	for {
		l.skipSpace()
		for l.i < len(l.s) && l.s[l.i] == ',' {
			l.i++
			l.skipSpace()
		}
		if l.i >= len(l.s) {
			return out, nil
		}
		scheme := l.token()
		if scheme == "" {
			return nil, ErrMalformedChallenge
		}
		c := AuthChallenge{Scheme: scheme, Params: map[string]string{}}
		l.skipSpace()
		// Parameters until the next challenge (a token followed by a space
		// and not by '=') or the end.
		for l.i < len(l.s) {
			save := l.i
			name := l.token()
			if name == "" {
				if l.s[l.i] == ',' {
					l.i++
					l.skipSpace()
					continue
				}
				return nil, ErrMalformedChallenge
			}
			l.skipSpace()
			if l.i >= len(l.s) || l.s[l.i] != '=' {
				// A new challenge starts here.
				l.i = save
				break
			}
			l.i++ // '='
			if len(c.Params) == 0 && (l.i >= len(l.s) || l.s[l.i] == '=' || l.s[l.i] == ',') {
				// token68 (RFC 9110 §11.2): the name and its '=' padding.
				pad := 1
				for l.i < len(l.s) && l.s[l.i] == '=' {
					l.i++
					pad++
				}
				c.Params[""] = name + strings.Repeat("=", pad)
				l.skipSpace()
				if l.i < len(l.s) && l.s[l.i] == ',' {
					l.i++
					l.skipSpace()
				}
				break
			}
			l.skipSpace()
			var val string
			if l.i < len(l.s) && l.s[l.i] == '"' {
				v, err := l.quoted()
				if err != nil {
					return nil, err
				}
				val = v
			} else {
				val = l.token()
				if val == "" {
					return nil, ErrMalformedChallenge
				}
			}
			lname := strings.ToLower(name)
			if _, dup := c.Params[lname]; dup {
				return nil, ErrMalformedChallenge
			}
			c.Params[lname] = val
			l.skipSpace()
			if l.i < len(l.s) {
				if l.s[l.i] != ',' {
					return nil, ErrMalformedChallenge
				}
				l.i++
				l.skipSpace()
			}
		}
		out = append(out, c)
	}
}
