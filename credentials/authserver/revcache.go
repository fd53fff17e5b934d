package authserver

import (
	"sync"
	"sync/atomic"
	"time"
)

// The revocation cache. Every verification of an access token asks
// whether it was revoked (isRevoked: its own revocation, its lineage, its
// ancestors' revocations, its family) and whether its subject was
// (SubjectRevoked). Those answers are kept in memory, so a token checked
// before costs no store read.
//
// A generation counter keeps them honest. A check loads the generation
// before its first store read and tags its answer with it; an answer is
// used only while its tag is the current generation. Every write that can
// revoke something (revokeAccessToken, revokeFamily, RevokeSubject) moves
// the generation on after the write, whether it succeeded or not. So a
// check that read the store before the write and keeps its answer after
// it, or just before the bump, has tagged it with a generation that is
// over by the time the revocation returns; and a check that loads the
// generation after the bump reads the store after the write. Either way no
// check that starts after a revocation returns answers from before it. A
// bump drops every answer, not only the revoked token's: revocations are
// rare next to verifications, and one counter cannot miss a token that a
// cascade reaches.
//
// Lineage records never change once written (saveLineage writes with
// IfAbsent, before the token is handed out), so an answer keeps the
// token's record across generations and the check after a bump reads only
// revocation records. A store error is returned and never kept: the next
// check reads the store again.
//
// Revocations made by another server writing the same store reach this
// one only through [Server.InvalidateRevocations]; see
// [Config.RevocationCache].

// DefaultRevocationCache is how many answers the revocation cache keeps
// when [Config.RevocationCache] is zero.
const DefaultRevocationCache = 1 << 16

// revocationCache holds the answers. A nil *revocationCache is a cache
// that is off: it has no answers and keeps none.
type revocationCache struct {
	gen      atomic.Uint64
	tokens   answers[tokenAnswer]
	subjects answers[subjectAnswer]
}

// tokenAnswer is what isRevoked found for one jti.
type tokenAnswer struct {
	revoked bool
	// lineage is the token's lineage record, when it has one and the
	// check read it.
	lineage *lineageRecord
}

// subjectAnswer is what SubjectRevoked found for one subject: the time
// of its revocation (Unix seconds), if it has one.
type subjectAnswer struct {
	at    int64
	found bool
}

func newRevocationCache(size int) *revocationCache {
	c := &revocationCache{}
	c.tokens.max = size
	c.subjects.max = size
	return c
}

// invalidate ends the current generation: no answer kept so far is used
// again.
func (c *revocationCache) invalidate() {
	if c != nil {
		c.gen.Add(1)
	}
}

// token returns the answer for jti when it is of the current generation
// (hit). Otherwise it returns the generation the caller tags the answer it
// reads with, loaded before any store read, and in a.lineage the token's
// lineage record if an older answer has it.
func (c *revocationCache) token(jti string) (a tokenAnswer, gen uint64, hit bool) {
	if c == nil {
		return tokenAnswer{}, 0, false
	}
	gen = c.gen.Load()
	e, ok := c.tokens.get(jti)
	if !ok {
		return tokenAnswer{}, gen, false
	}
	if e.gen == gen {
		return e.v, gen, true
	}
	return tokenAnswer{lineage: e.v.lineage}, gen, false
}

// keepToken keeps a, read under generation gen, for the token jti, which
// is of no interest after until.
func (c *revocationCache) keepToken(jti string, gen uint64, a tokenAnswer, until, now time.Time) {
	if c != nil {
		c.tokens.put(jti, &answer[tokenAnswer]{gen: gen, until: until, v: a}, c.gen.Load(), now)
	}
}

// subject is token for subjects.
func (c *revocationCache) subject(subject string) (a subjectAnswer, gen uint64, hit bool) {
	if c == nil {
		return subjectAnswer{}, 0, false
	}
	gen = c.gen.Load()
	if e, ok := c.subjects.get(subject); ok && e.gen == gen {
		return e.v, gen, true
	}
	return subjectAnswer{}, gen, false
}

// keepSubject is keepToken for subjects; their answers do not expire.
func (c *revocationCache) keepSubject(subject string, gen uint64, a subjectAnswer, now time.Time) {
	if c != nil {
		c.subjects.put(subject, &answer[subjectAnswer]{gen: gen, v: a}, c.gen.Load(), now)
	}
}

// answers is a map of answers of bounded size, safe for concurrent use.
// Reads take no lock. When it is full, a sweep drops the answers of past
// generations and of expired tokens, and everything if that frees less
// than a quarter.
type answers[V any] struct {
	max int
	m   sync.Map // string → *answer[V]
	// n is how many keys m holds, to within the inserts that race a
	// sweep.
	n     atomic.Int64
	sweep sync.Mutex
}

// answer is one cached answer; it is never changed once stored.
type answer[V any] struct {
	gen uint64
	// until is when the answer is no longer worth keeping (the token has
	// expired); zero for never.
	until time.Time
	v     V
}

func (a *answers[V]) get(key string) (*answer[V], bool) {
	v, ok := a.m.Load(key)
	if !ok {
		return nil, false
	}
	return v.(*answer[V]), true
}

// put stores e under key; current is the current generation.
func (a *answers[V]) put(key string, e *answer[V], current uint64, now time.Time) {
	if a.n.Load() >= int64(a.max) {
		if _, ok := a.m.Load(key); !ok {
			a.evict(current, now)
		}
	}
	if _, loaded := a.m.Swap(key, e); !loaded {
		a.n.Add(1)
	}
}

// evict makes room. A put that finds another one evicting goes ahead
// without waiting.
func (a *answers[V]) evict(current uint64, now time.Time) {
	if !a.sweep.TryLock() {
		return
	}
	defer a.sweep.Unlock()
	a.m.Range(func(k, v any) bool {
		e := v.(*answer[V])
		if e.gen != current || (!e.until.IsZero() && !now.Before(e.until)) {
			if a.m.CompareAndDelete(k, v) {
				a.n.Add(-1)
			}
		}
		return true
	})
	if a.n.Load() > int64(a.max)*3/4 {
		a.m.Clear()
		a.n.Store(0)
	}
}

// len is about how many answers a holds.
func (a *answers[V]) len() int { return int(a.n.Load()) }

// InvalidateRevocations makes every later revocation check read the
// store, as a revocation made by this server does. It is the hook for a
// store that several servers write (a future PostgreSQL store's change
// notification, say): it must be called on every server after another one
// revokes an access token, a refresh-token family or a subject, or those
// servers keep accepting what was revoked; see [Config.RevocationCache].
// It is cheap, and safe to call from any goroutine and as often as
// needed.
func (s *Server) InvalidateRevocations() { s.revocations.invalidate() }

// revocationWritten follows every revocation write: this server's answers
// are dropped, and Config.OnRevocation tells the others.
func (s *Server) revocationWritten() {
	s.InvalidateRevocations()
	if s.cfg.OnRevocation != nil {
		s.cfg.OnRevocation()
	}
}
