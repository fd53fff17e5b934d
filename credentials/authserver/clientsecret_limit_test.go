package authserver

import (
	"net/url"
	"testing"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestClientSecretChecksAreBounded: a client secret is checked under the
// same bounded pool as sign-in passwords (argon2id takes 19 MiB a check),
// so a flood of client authentications is turned away with 503
// temporarily_unavailable instead of exhausting memory.
func TestClientSecretChecksAreBounded(t *testing.T) {
	release := make(chan struct{})
	hashing := make(chan struct{}, 1)
	limiter, err := userauth.NewLimiter(userauth.LimiterConfig{MaxConcurrent: 1, Wait: -1, OnHash: func() func() {
		hashing <- struct{}{}
		<-release
		return func() {}
	}})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := userauth.NewDirectory(nil, userauth.WithLimiter(limiter))
	if err != nil {
		t.Fatal(err)
	}
	e := newCodeEnv(t, func(c *Config) { c.Users = dir })
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_id": {jobClient}, "client_secret": {webSecret}}
	first := make(chan int, 1)
	go func() {
		status, _, _ := e.post(PathToken, form, nil)
		first <- status
	}()
	select { // the first check holds the only slot
	case <-hashing:
	case status := <-first:
		t.Fatalf("the client secret was not checked under the limiter (status %d)", status)
	}
	status, body, header := e.post(PathToken, form, nil)
	if status != 503 || body["error"] != oauth.CodeTemporarilyUnavailable || header.Get("Retry-After") == "" {
		t.Errorf("second client authentication while the pool is full: %d %v %v", status, body, header)
	}
	close(release)
	if status := <-first; status != 200 {
		t.Errorf("first client authentication: %d", status)
	}
}
