package wimse

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// HTTP header fields of the WIMSE protocols (SPECS.md X.3, §8.2–§8.4,
// RFC 9421, RFC 9530).
const (
	HeaderWIT            = "Workload-Identity-Token" // the WIT, one compact JWT
	HeaderWPT            = "Workload-Proof-Token"    // the WPT, one compact JWT
	HeaderSignature      = "Signature"               // RFC 9421 signatures
	HeaderSignatureInput = "Signature-Input"         // RFC 9421 signature parameters
	HeaderContentDigest  = "Content-Digest"          // RFC 9530 digest of the body
	HeaderTxnToken       = "Txn-Token"               // a Txn-Token, bound by tth or covered by a signature
)

// singleHeader returns the one value of header name in h: "" when absent,
// an error when the header appears more than once or is empty.
func singleHeader(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		v := strings.TrimSpace(vs[0])
		if v == "" {
			return "", fmt.Errorf("empty %s header", name)
		}
		return v, nil
	}
	return "", fmt.Errorf("%d %s headers, want one", len(vs), name)
}

// accessToken returns the OAuth access token of an Authorization header
// using the Bearer (RFC 6750) or DPoP (RFC 9449) scheme; "" when there is
// no Authorization header or it uses another scheme.
func accessToken(h http.Header) (string, error) {
	v, err := singleHeader(h, "Authorization")
	if err != nil || v == "" {
		return "", err
	}
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok {
		return "", nil
	}
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "DPoP") {
		return "", nil
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" || strings.ContainsAny(tok, " \t,") {
		return "", fmt.Errorf("malformed %s authorization", scheme)
	}
	return tok, nil
}

// otherTokens returns the values of the configured other-token headers
// present in h, keyed by lowercase name.
func otherTokens(h http.Header, names []string) (map[string]string, error) {
	var out map[string]string
	for _, name := range names {
		v, err := singleHeader(h, name)
		if err != nil {
			return nil, err
		}
		if v == "" {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(names))
		}
		out[name] = v
	}
	return out, nil
}

// TargetURI returns the HTTP target URI of u without query and fragment
// (RFC 9110 §7.1), in the normalised form this package compares audiences
// in: lowercase scheme and host, no default port, "/" for an empty path.
// It is the default aud of a WPT and wimse-aud of an HTTP signature
// (SPECS.md §8.3, §8.4).
func TargetURI(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return normalizeAudience(c.String())
}

// normalizeAudience returns the comparison form of an audience. An
// absolute http(s) URL without userinfo loses its query and fragment, and
// gets a lowercase scheme and host, no default port and "/" for an empty
// path; any other value (a deployment-specific audience) is compared as it
// is, code point for code point.
func normalizeAudience(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return s
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return s
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80") {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// audienceMatches reports whether the audience a proof carries names the
// expected one.
func audienceMatches(got, want string) bool {
	return want != "" && got != "" && normalizeAudience(got) == normalizeAudience(want)
}

// requestTarget returns the request-target of a request as the client
// sent it in origin form (RFC 9421 §2.2.5): path and query.
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// Audience returns the audience this server expects of a WIMSE proof on
// r: Config.BaseURL with the request's path appended, without query. It
// uses no request header, so neither Host nor X-Forwarded-Host can change
// it (SPECS.md §8.3). It is empty when Config.BaseURL is not set.
func (v *Verifier) Audience(r *http.Request) string {
	if v.base == nil {
		return ""
	}
	path, _, _ := strings.Cut(requestTarget(r), "?")
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return normalizeAudience(v.base.Scheme + "://" + v.base.Host + v.base.EscapedPath() + path)
}
