package dpop

import (
	"net/url"
	"strings"
	"testing"
)

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		in, want string // want "" means not acceptable
	}{
		{"https://as.example/oauth2/token", "https://as.example/oauth2/token"},
		{"HTTPS://AS.EXAMPLE/Path", "https://as.example/Path"},
		{"https://as.example:443/x", "https://as.example/x"},
		{"http://as.example:80/x", "http://as.example/x"},
		{"http://as.example:443/x", "http://as.example:443/x"},
		{"https://as.example:80/x", "https://as.example:80/x"},
		{"https://as.example:/x", "https://as.example/x"},
		{"https://as.example", "https://as.example/"},
		{"https://as.example?q=1#f", "https://as.example/"},
		{"https://as.example/x?q=1#f", "https://as.example/x"},
		{"https://as.example/x?", "https://as.example/x"},
		{"https://as.example/a/./b/../c", "https://as.example/a/c"},
		{"https://as.example/a/b/..", "https://as.example/a/"},
		{"https://as.example/a/.", "https://as.example/a/"},
		{"https://as.example/../../x", "https://as.example/x"},
		{"https://as.example/%2e%2E/x", "https://as.example/x"},
		{"https://as.example/%7e%41%2f%3a", "https://as.example/~A%2F%3A"},
		{"https://as.example/a%20b", "https://as.example/a%20b"},
		{"https://as.example/a b", "https://as.example/a%20b"},
		{"https://as.example/.well-known/x", "https://as.example/.well-known/x"},
		{"https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
		{"https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443/x"},
		{"https://127.0.0.1:8443", "https://127.0.0.1:8443/"},
		{"/relative", ""},
		{"as.example/x", ""},
		{"ftp://as.example/x", ""},
		{"https:opaque", ""},
		{"https://user:pw@as.example/", ""},
		{"https:///path", ""},
		{"https://:443/path", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := url.Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := normalizeURL(u)
			if ok != (tt.want != "") || got != tt.want {
				t.Fatalf("normalizeURL(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestRemoveDotSegments(t *testing.T) {
	// RFC 3986 §5.4 reference resolution results, as paths.
	tests := map[string]string{
		"/a/b/c/./../../g":     "/a/g",
		"/mid/content=5/../6":  "/mid/6",
		"/a/b/c/../../../g":    "/g",
		"/a/b/c/../../../../g": "/g",
		"/./g":                 "/g",
		"/g.":                  "/g.",
		"/..g":                 "/..g",
		"/":                    "/",
		"":                     "",
	}
	for in, want := range tests {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{
		"https://as.example/oauth2/token", "HTTP://A:80/./b/../%7e?x#y", "https://[::1]:443",
		"https://as.example/%zz", "https://a/%2e%2e%2f", "http://a//b//../c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		n, ok := normalizeURL(u)
		if !ok {
			return
		}
		if !strings.HasPrefix(n, "http://") && !strings.HasPrefix(n, "https://") || strings.ContainsAny(n, "?#") {
			t.Fatalf("normalizeURL(%q) = %q", s, n)
		}
		// Normalizing twice changes nothing.
		u2, err := url.Parse(n)
		if err != nil {
			return
		}
		if n2, ok := normalizeURL(u2); !ok || n2 != n {
			t.Fatalf("normalizeURL(%q) = %q, then %q (%v)", s, n, n2, ok)
		}
	})
}
