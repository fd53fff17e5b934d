package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Run refreshes every peer's bundle until ctx ends, each by its own
// schedule (see the package documentation), starting with a fetch of every
// peer. Failures are logged and reported to OnRefuse; Run returns nil when
// ctx ends. It may run once per Set.
func (s *Set) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("federation: Run called twice")
	}
	var wg sync.WaitGroup
	for _, p := range s.order {
		wg.Go(func() { s.loop(ctx, p) })
	}
	wg.Wait()
	<-ctx.Done()
	return nil
}

// loop is the refresh loop of p: fetch when due, else wait until due or
// until the schedule changes.
func (s *Set) loop(ctx context.Context, p *peer) {
	for ctx.Err() == nil {
		s.mu.RLock()
		next := p.next
		s.mu.RUnlock()
		d := next.Sub(s.now())
		if d <= 0 {
			_ = s.refresh(ctx, p) // logged and reported inside
			continue
		}
		c, stop := s.after(d)
		select {
		case <-ctx.Done():
			stop()
		case <-p.wake:
			stop()
		case <-c:
		}
	}
}

// Refresh fetches the bundle of the federated trust domain td now and
// applies it as the refresh loop would, including the next refresh time.
// It returns the reason the bundle was not taken, if any.
func (s *Set) Refresh(ctx context.Context, td string) error {
	t, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return fmt.Errorf("federation: trust domain %q: %w", td, err)
	}
	p, ok := s.peers[t]
	if !ok {
		return notFederated(t)
	}
	err = s.refresh(ctx, p)
	poke(p)
	return err
}

// RefreshDue fetches the bundle of every peer whose next refresh time has
// come at Now, one after the other, and returns the joined errors.
func (s *Set) RefreshDue(ctx context.Context) error {
	var errs []error
	for _, p := range s.order {
		s.mu.RLock()
		due := !p.next.After(s.now())
		s.mu.RUnlock()
		if !due {
			continue
		}
		errs = append(errs, s.refresh(ctx, p))
		poke(p)
	}
	return errors.Join(errs...)
}

// poke wakes p's refresh loop to look at its schedule again.
func poke(p *peer) {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// refresh fetches p's bundle, checks it against the kept one, keeps and
// stores it when it is new, and schedules the next refresh.
func (s *Set) refresh(ctx context.Context, p *peer) error {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()

	kept := s.kept(p)
	data, b, err := s.fetch(ctx, p)
	if err == nil {
		if err = checkSequence(kept, b); err != nil {
			err = fmt.Errorf("federation: the bundle of %s from %s: %w", p.td.Name(), p.endpoint, err)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: not a refusal, and the schedule stays.
			return fmt.Errorf("federation: refresh %s: %w", p.td.Name(), ctx.Err())
		}
		s.mu.Lock()
		p.failures++
		p.lastErr = err
		p.next = s.now().Add(s.retryDelay(p.bundle, p.failures))
		s.mu.Unlock()
		s.refused(ctx, p, err)
		return err
	}

	changed := kept == nil || !kept.Equal(b)
	if changed {
		if serr := s.store.Save(ctx, p.td.Name(), data); serr != nil {
			s.log.ErrorContext(ctx, "federated bundle not saved",
				slog.String(logKeyTrustDomain, p.td.Name()), slog.String(logKeyError, serr.Error()))
		}
	}
	now := s.now()
	next := now.Add(s.interval(b))
	s.mu.Lock()
	if changed {
		p.bundle = b
	}
	p.failures = 0
	p.lastErr = nil
	p.lastSuccess = now
	p.next = next
	s.mu.Unlock()

	seq, _ := b.SequenceNumber()
	if changed {
		s.log.InfoContext(ctx, "federated bundle updated",
			slog.String(logKeyTrustDomain, p.td.Name()), slog.Uint64(logKeySequence, seq),
			slog.Int(logKeyKeys, len(b.X509Authorities())+len(b.JWTAuthorities())+len(b.WITAuthorities())),
			slog.Time(logKeyNext, next))
		if s.onUpdate != nil {
			s.onUpdate(p.td.Name(), seq)
		}
	} else {
		s.log.DebugContext(ctx, "federated bundle unchanged",
			slog.String(logKeyTrustDomain, p.td.Name()), slog.Uint64(logKeySequence, seq), slog.Time(logKeyNext, next))
	}
	return nil
}

// refused logs err and reports it to OnRefuse.
func (s *Set) refused(ctx context.Context, p *peer, err error) {
	s.log.WarnContext(ctx, "federated bundle refused",
		slog.String(logKeyTrustDomain, p.td.Name()), slog.String(logKeyEndpoint, p.endpoint),
		slog.String(logKeyError, err.Error()))
	if s.onRefuse != nil {
		s.onRefuse(p.td.Name(), p.endpoint, err)
	}
}

// fetch GETs p's bundle from its configured endpoint URL (SPECS.md §10.7)
// and parses it.
func (s *Set) fetch(ctx context.Context, p *peer) ([]byte, *spiffebundle.Bundle, error) {
	resp, err := p.fetcher.Get(ctx, p.endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("federation: fetch the bundle of %s: %w", p.td.Name(), err)
	}
	if resp.Status != http.StatusOK {
		return nil, nil, fmt.Errorf("federation: fetch the bundle of %s: %w", p.td.Name(), &fetch.StatusError{Code: resp.Status})
	}
	b, err := parseBundle(p.td, resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("federation: the bundle of %s from %s: %w", p.td.Name(), p.endpoint, err)
	}
	return resp.Body, b, nil
}

// parseBundle reads data as the SPIFFE bundle (SPECS.md §10.5) of td. It
// refuses what is not a bundle and a bundle whose X.509 authorities carry
// a SPIFFE ID of another trust domain.
func parseBundle(td spiffeid.TrustDomain, data []byte) (*spiffebundle.Bundle, error) {
	b, err := spiffebundle.Parse(td, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidBundle, err)
	}
	for _, c := range b.X509Authorities() {
		for _, u := range c.URIs {
			if !strings.EqualFold(u.Scheme, "spiffe") {
				continue
			}
			id, err := spiffeid.FromURI(u)
			if err != nil {
				return nil, fmt.Errorf("%w: X.509 authority %q has a malformed SPIFFE ID: %v", ErrWrongTrustDomain, c.Subject.String(), err)
			}
			if id.TrustDomain() != td {
				return nil, fmt.Errorf("%w: X.509 authority %q names trust domain %s, want %s", ErrWrongTrustDomain, c.Subject.String(), id.TrustDomain().Name(), td.Name())
			}
		}
	}
	return b, nil
}

// checkSequence refuses got when its sequence number is lower than kept's,
// or missing while kept has one.
func checkSequence(kept, got *spiffebundle.Bundle) error {
	if kept == nil {
		return nil
	}
	ks, ok := kept.SequenceNumber()
	if !ok {
		return nil
	}
	gs, ok := got.SequenceNumber()
	if !ok {
		return fmt.Errorf("%w: the bundle has no spiffe_sequence, the kept one has %d", ErrRollback, ks)
	}
	if gs < ks {
		return fmt.Errorf("%w: spiffe_sequence %d is lower than the kept %d", ErrRollback, gs, ks)
	}
	return nil
}

// interval is the time until the refresh after a good fetch of b: its
// refresh hint (DefaultRefreshHint when it has none) clamped to
// [MinRefresh, MaxRefresh].
func (s *Set) interval(b *spiffebundle.Bundle) time.Duration {
	d := DefaultRefreshHint
	if b != nil {
		if h, ok := b.RefreshHint(); ok && h > 0 {
			d = h
		}
	}
	return min(max(d, s.minRefresh), s.maxRefresh)
}

// retryDelay is the time until the retry after the failures-th failure in
// a row: RetryInterval doubled on every further failure, never longer than
// the regular interval of the kept bundle.
func (s *Set) retryDelay(kept *spiffebundle.Bundle, failures int) time.Duration {
	limit := s.interval(kept)
	d := s.retry
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
