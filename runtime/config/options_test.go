package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

func TestParseWithListenAddress(t *testing.T) {
	dir := tlsDir(t)
	name := filepath.Join(dir, "agenthost.yaml")
	tests := []struct {
		name       string
		src        string
		addr       config.Address
		wantIssuer string
		// wantDefaulted is what IssuerDefaulted reports.
		wantDefaulted bool
	}{
		{
			name:       "replaces the file's address, and the derived issuer follows",
			src:        "version: 1\nlisten:\n  address: 127.0.0.1:8420\n",
			addr:       "127.0.0.1:8422",
			wantIssuer: "http://127.0.0.1:8422", wantDefaulted: true,
		},
		{
			name:       "sets an address the file leaves out",
			src:        "version: 1\n",
			addr:       "localhost:9000",
			wantIssuer: "http://localhost:9000", wantDefaulted: true,
		},
		{
			name:       "an issuer the file sets is kept",
			src:        "version: 1\nlisten:\n  address: 127.0.0.1:8420\n  issuer: http://127.0.0.1:8420\n",
			addr:       "127.0.0.1:8422",
			wantIssuer: "http://127.0.0.1:8420",
		},
		{
			name:       "with TLS a non-loopback address is accepted",
			src:        "version: 1\nlisten:\n  tls: {cert_file: cert.pem, key_file: key.pem}\n",
			addr:       "192.0.2.10:8443",
			wantIssuer: "https://192.0.2.10:8443", wantDefaulted: true,
		},
		{
			name:       "a file address refused without TLS is replaced",
			src:        "version: 1\nlisten:\n  address: 192.0.2.10:8420\n",
			addr:       "127.0.0.1:8422",
			wantIssuer: "http://127.0.0.1:8422", wantDefaulted: true,
		},
		{
			name:       "a file address that does not decode is replaced",
			src:        "version: 1\nlisten:\n  address: nonsense\n",
			addr:       "127.0.0.1:8422",
			wantIssuer: "http://127.0.0.1:8422", wantDefaulted: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.ParseWith(name, []byte(tt.src), config.LoadOptions{ListenAddress: tt.addr})
			if err != nil {
				t.Fatalf("ParseWith: %v", err)
			}
			if c.Listen.Address != tt.addr {
				t.Errorf("listen.address = %q, want %q", c.Listen.Address, tt.addr)
			}
			if c.Listen.Issuer != tt.wantIssuer || c.IssuerURL() != tt.wantIssuer {
				t.Errorf("listen.issuer = %q, IssuerURL() = %q, want %q", c.Listen.Issuer, c.IssuerURL(), tt.wantIssuer)
			}
			if c.IssuerDefaulted() != tt.wantDefaulted {
				t.Errorf("IssuerDefaulted() = %v, want %v", c.IssuerDefaulted(), tt.wantDefaulted)
			}
			if pos, ok := c.Position("listen.address"); ok {
				t.Errorf("Position(listen.address) = %v, want none: the address is not the file's", pos)
			}
		})
	}
}

func TestParseWithListenAddressRefused(t *testing.T) {
	tests := []struct {
		name string
		src  string
		addr config.Address
		want string
	}{
		{
			name: "non-loopback without TLS",
			src:  "version: 1\nlisten:\n  address: 127.0.0.1:8420\n",
			addr: "0.0.0.0:8422",
			want: "x.yaml: listen.address: listening on 0.0.0.0:8422 without TLS is refused; configure listen.tls or bind a loopback address",
		},
		{
			name: "not host:port",
			src:  "version: 1\n",
			addr: "8422",
			want: `x.yaml: listen.address: address "8422" is not host:port (for example 127.0.0.1:8420)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseWith("x.yaml", []byte(tt.src), config.LoadOptions{ListenAddress: tt.addr})
			errs := problems(t, err)
			if len(errs) != 1 || errs[0].Error() != tt.want || errs[0].Path != "listen.address" ||
				errs[0].Line != 0 || !errors.Is(errs[0], config.ErrInvalid) {
				t.Fatalf("ParseWith error:\n%v\nwant the one problem %q, without a line, wrapping ErrInvalid", err, tt.want)
			}
		})
	}
}

func TestParseWithNoOptions(t *testing.T) {
	src := []byte("version: 1\nlisten:\n  address: 127.0.0.1:8421\n")
	a, err := config.Parse("x.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.ParseWith("x.yaml", src, config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != b.Digest() {
		t.Errorf("ParseWith with no options: digest %s, Parse: %s", b.Digest(), a.Digest())
	}
	if _, ok := b.Position("listen.address"); !ok {
		t.Errorf("Position(listen.address) not found; the file writes it")
	}
	// Without the override, the file's own problems stay.
	_, err = config.ParseWith("x.yaml", []byte("version: 1\nlisten:\n  address: 0.0.0.0:8420\n"), config.LoadOptions{})
	if errs := problems(t, err); len(errs) != 1 || errs[0].Line != 3 || errs[0].Path != "listen.address" {
		t.Errorf("ParseWith error = %v, want the file's listen.address at line 3", err)
	}
}

func TestLoadWith(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agenthost.yaml")
	if err := os.WriteFile(path, []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadWith(path, config.LoadOptions{ListenAddress: "127.0.0.1:8423"})
	if err != nil {
		t.Fatalf("LoadWith: %v", err)
	}
	if c.Listen.Address != "127.0.0.1:8423" || c.IssuerURL() != "http://127.0.0.1:8423" || c.File() != path {
		t.Errorf("LoadWith: address %q, issuer %q, file %q", c.Listen.Address, c.IssuerURL(), c.File())
	}
	_, err = config.LoadWith(filepath.Join(t.TempDir(), "nope.yaml"), config.LoadOptions{ListenAddress: "127.0.0.1:8423"})
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: open") {
		t.Errorf("LoadWith of a missing file: %v", err)
	}
}
