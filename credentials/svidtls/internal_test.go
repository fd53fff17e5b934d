package svidtls

import (
	"crypto/tls"
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		failures int
		want     time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 30 * time.Second},
		{1000, 30 * time.Second},
	} {
		if got := backoff(tt.failures, time.Second, 30*time.Second); got != tt.want {
			t.Errorf("backoff(%d) = %s, want %s", tt.failures, got, tt.want)
		}
	}
}

func TestOrigin(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"https://b.test", "https://b.test:443"},
		{"HTTPS://B.Test:443/", "https://b.test:443"},
		{"https://b.test.:8443", "https://b.test:8443"},
		{"https://b.test:08443", "https://b.test:8443"},
		{"https://[::1]:8443", "https://[::1]:8443"},
		{"https://127.0.0.1", "https://127.0.0.1:443"},
	} {
		got, err := parseOrigin(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"http://b.test", "https://b.test/x", "https://b.test#f", "https://b.test?", "https://u:p@b.test", "https://b.test:0", "https://b.test:x", "https:b.test", "https://"} {
		if got, err := parseOrigin(in); !errors.Is(err, ErrConfig) {
			t.Errorf("parseOrigin(%q) = %q, %v; want ErrConfig", in, got, err)
		}
	}
	u, _ := url.Parse("http://b.test/x")
	if got := requestOrigin(u); got != "http://b.test:80" {
		t.Errorf("requestOrigin(%s) = %q", u, got)
	}
}

// TestVerifierRequiresCertificate checks the verifier's own refusal of a
// peer without a certificate, behind crypto/tls's (RequireAnyClientCert on
// servers; a TLS server always sends one).
func TestVerifierRequiresCertificate(t *testing.T) {
	v := &verifier{required: true, peer: "client", log: orDiscard(nil), now: orNow(nil)}
	if err := v.verifyConnection(tls.ConnectionState{}); !errors.Is(err, ErrInvalidSVID) {
		t.Errorf("required: %v, want ErrInvalidSVID", err)
	}
	v.required = false
	if err := v.verifyConnection(tls.ConnectionState{}); err != nil {
		t.Errorf("optional: %v, want nil", err)
	}
}
