package oauth

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits of a form request.
const (
	// MaxFormBytes caps a form-encoded request body.
	MaxFormBytes = 64 << 10
	// MaxParamBytes caps one parameter value. Assertions and subject
	// tokens are the longest legitimate values.
	MaxParamBytes = 16 << 10
	// MaxParams caps the number of parameters in one request.
	MaxParams = 64
)

// Form holds request parameters parsed by [ParseForm] or [ParseQuery].
// Every value is valid UTF-8 without control characters and at most
// [MaxParamBytes] long.
type Form struct {
	values url.Values
}

// NewForm wraps values that were already checked (tests and clients).
func NewForm(values url.Values) Form { return Form{values: values} }

// ParseForm reads a POST body of type application/x-www-form-urlencoded
// (RFC 6749 §3.2 and Appendix B). Parameters in the URL query are not
// read: a token request carries its parameters in the body only.
func ParseForm(r *http.Request) (Form, error) {
	if r.Method != http.MethodPost {
		return Form{}, Errorf(CodeInvalidRequest, "the method must be POST").WithStatus(http.StatusMethodNotAllowed)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return Form{}, Errorf(CodeInvalidRequest, "the content type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxFormBytes+1))
	if err != nil {
		return Form{}, Errorf(CodeInvalidRequest, "the request body could not be read")
	}
	if len(body) > MaxFormBytes {
		return Form{}, Errorf(CodeInvalidRequest, "the request body exceeds %d bytes", MaxFormBytes)
	}
	return parseEncoded(string(body))
}

// ParseQuery reads the parameters of a GET request's query (an
// authorization request, RFC 6749 §4.1.1).
func ParseQuery(r *http.Request) (Form, error) {
	if len(r.URL.RawQuery) > MaxFormBytes {
		return Form{}, Errorf(CodeInvalidRequest, "the query exceeds %d bytes", MaxFormBytes)
	}
	return parseEncoded(r.URL.RawQuery)
}

// ParseEncoded parses s as application/x-www-form-urlencoded with the
// checks of [ParseForm].
func ParseEncoded(s string) (Form, error) {
	if len(s) > MaxFormBytes {
		return Form{}, Errorf(CodeInvalidRequest, "the parameters exceed %d bytes", MaxFormBytes)
	}
	return parseEncoded(s)
}

func parseEncoded(s string) (Form, error) {
	if strings.Count(s, "&") >= MaxParams {
		return Form{}, Errorf(CodeInvalidRequest, "more than %d parameters", MaxParams)
	}
	values, err := url.ParseQuery(s)
	if err != nil {
		return Form{}, Errorf(CodeInvalidRequest, "the parameters are not valid form encoding")
	}
	for name, vs := range values {
		if err := checkParam(name); err != nil {
			return Form{}, err
		}
		for _, v := range vs {
			if len(v) > MaxParamBytes {
				return Form{}, Errorf(CodeInvalidRequest, "parameter %s exceeds %d bytes", safeName(name), MaxParamBytes)
			}
			if !validText(v) {
				return Form{}, Errorf(CodeInvalidRequest, "parameter %s holds invalid characters", safeName(name))
			}
		}
	}
	return Form{values: values}, nil
}

func checkParam(name string) error {
	if name == "" || len(name) > 128 || !validText(name) {
		return Errorf(CodeInvalidRequest, "a parameter name is malformed")
	}
	return nil
}

// validText reports whether s is UTF-8 without control characters other
// than space (JSON parameters such as authorization_details may hold
// newlines and tabs, so those are allowed too).
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

func safeName(name string) string {
	if len(name) > 40 {
		name = name[:40]
	}
	return name
}

// Has reports whether name is present (even with an empty value).
func (f Form) Has(name string) bool {
	_, ok := f.values[name]
	return ok
}

// Get returns the single value of name, or "" when it is absent. A
// parameter sent more than once is an error (RFC 6749 §3.1, §3.2); an
// empty value counts as absent (RFC 6749 §3.1).
func (f Form) Get(name string) (string, error) {
	vs := f.values[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", Errorf(CodeInvalidRequest, "parameter %s is included more than once", safeName(name))
	}
}

// Require returns the single, non-empty value of name.
func (f Form) Require(name string) (string, error) {
	v, err := f.Get(name)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", Errorf(CodeInvalidRequest, "parameter %s is missing", safeName(name))
	}
	return v, nil
}

// All returns every value of a parameter the specification lets repeat
// (resource and audience, RFC 8707 §2 and RFC 8693 §2.1). Empty values
// are an error.
func (f Form) All(name string) ([]string, error) {
	vs := f.values[name]
	for _, v := range vs {
		if v == "" {
			return nil, Errorf(CodeInvalidRequest, "parameter %s has an empty value", safeName(name))
		}
	}
	return vs, nil
}

// Values returns a copy of the parameters.
func (f Form) Values() url.Values {
	out := make(url.Values, len(f.values))
	for k, v := range f.values {
		out[k] = append([]string(nil), v...)
	}
	return out
}
