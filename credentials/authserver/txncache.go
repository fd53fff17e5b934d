package authserver

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// The host asks IssueTxnToken for a token on every call it mediates, most
// often presenting the same subject token again: a task's own Txn-Token
// for each of the task's calls, or an MCP client's access token for each
// of its tools/call. Verifying that token's signature again each time
// would double the cost of a call, so a verified subject token is
// remembered (by its SHA-256) until it expires. An access token's
// revocation is still checked on every use; a Txn-Token cannot be revoked.

// txnSubjectCacheSize bounds the subject tokens remembered.
const txnSubjectCacheSize = 4096

// verifiedSubject is a subject token verified before: exactly one of the
// two is set.
type verifiedSubject struct {
	txn    *txntoken.Claims
	access *oauth.AccessTokenClaims
}

func (v verifiedSubject) expires() time.Time {
	if v.txn != nil {
		return time.Unix(v.txn.ExpiresAt, 0)
	}
	return time.Unix(v.access.ExpiresAt, 0)
}

// subjectCache remembers verified subject tokens of IssueTxnToken.
type subjectCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedSubject
}

func (c *subjectCache) get(key [sha256.Size]byte, now time.Time) (verifiedSubject, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok {
		return verifiedSubject{}, false
	}
	if !now.Before(v.expires()) {
		delete(c.m, key)
		return verifiedSubject{}, false
	}
	return v, true
}

func (c *subjectCache) put(key [sha256.Size]byte, v verifiedSubject, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]verifiedSubject{}
	}
	if len(c.m) >= txnSubjectCacheSize {
		// Drop the expired entries, then, if still full, any.
		for k, e := range c.m {
			if !now.Before(e.expires()) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < txnSubjectCacheSize {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = v
}

// verifyTxnSubjectToken verifies the subject token of an in-process
// Txn-Token request: a Txn-Token of this server (returned as txn) or, when
// the token is of another typ, an access token of this server (asAccess,
// with its claims or VerifyAccessToken's error). Other errors are
// txntoken.Verify's. A cached token's claims are copies.
func (s *Server) verifyTxnSubjectToken(ctx context.Context, token string) (txn *txntoken.Claims, access *oauth.AccessTokenClaims, asAccess bool, err error) {
	key := sha256.Sum256([]byte(token))
	now := s.now()
	if v, ok := s.txn.cache.get(key, now); ok {
		if v.txn != nil {
			c := *v.txn
			return &c, nil, false, nil
		}
		c := *v.access
		revoked, err := s.accessRevoked(ctx, &c)
		switch {
		case err != nil:
			return nil, nil, true, err
		case revoked:
			return nil, nil, true, oauth.Errorf(oauth.CodeInvalidToken, "the access token was revoked")
		}
		return nil, &c, true, nil
	}
	c, err := txntoken.Verify(ctx, token, s.txnVerifyOptions())
	if err == nil {
		cc := *c
		s.txn.cache.put(key, verifiedSubject{txn: &cc}, now)
		return c, nil, false, nil
	}
	if !isWrongType(err) {
		return nil, nil, false, err
	}
	a, err := s.VerifyAccessToken(ctx, token, "")
	if err != nil {
		return nil, nil, true, err
	}
	ac := *a
	s.txn.cache.put(key, verifiedSubject{access: &ac}, now)
	return nil, a, true, nil
}
