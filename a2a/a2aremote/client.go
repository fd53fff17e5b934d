package a2aremote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// Defaults of [Config].
const (
	// DefaultMaxCardBytes caps a fetched agent card.
	DefaultMaxCardBytes int64 = 128 << 10
	// DefaultMaxResponseBytes caps one A2A response (a whole stream).
	DefaultMaxResponseBytes int64 = 8 << 20
)

// CardPath is where an agent's card is, under its A2A URL (A2A 0.3).
const CardPath = "/.well-known/agent-card.json"

// Sentinel errors; test with errors.Is.
var (
	// ErrInvalidConfig is returned by [New] for an unusable Config.
	ErrInvalidConfig = errors.New("a2aremote: invalid config")
	// ErrCard reports a card that cannot be used: not a card, without a
	// JSON-RPC endpoint, with an endpoint on another origin than the card
	// (unless the card's signature verified), or refused by the signature
	// check (the error then also wraps the a2acard sentinel).
	ErrCard = errors.New("a2aremote: unusable agent card")
)

// Config configures a [Client].
type Config struct {
	// HTTPClient sends card fetches and A2A calls. Nil means a client with
	// no timeout of its own (card fetches have CardTimeout; calls end with
	// their context). It is copied, never modified: card fetches follow the
	// outbound-fetch rules of credentials/oauth/fetch (same-origin
	// redirects only, size cap, timeout, no private addresses unless
	// AllowPrivate), and A2A calls follow no redirects at all. A host that
	// adds per-request proofs (DPoP, WIMSE) does it in the client's
	// Transport.
	HTTPClient *http.Client
	// AllowHTTP permits http URLs (loopback development, tests).
	AllowHTTP bool
	// AllowPrivate permits card fetches from loopback and private
	// addresses (which are refused by default).
	AllowPrivate bool
	// CardTimeout bounds a card fetch; 0 means fetch.DefaultTimeout.
	CardTimeout time.Duration
	// MaxCardBytes caps a card; 0 means DefaultMaxCardBytes.
	MaxCardBytes int64
	// MaxResponseBytes caps the body of one A2A response, a stream as a
	// whole; 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// CardKeys returns the trust bundle of the domain of the card at
	// cardURL: the keys its signature must verify with. Nil (and no
	// CardVerify) verifies no card.
	CardKeys func(ctx context.Context, cardURL string) (jose.KeyFunc, error)
	// CardVerify returns the options the card at cardURL is verified with
	// (a2acard.VerifyJSON): the trust bundle of the card's domain as its
	// X.509 authorities (Roots, and CheckLeaf saying which leaf may sign
	// the card) for a signature that carries an x5c chain, and as a key
	// lookup by kid (Keys) for one that does not. It is the general form
	// of CardKeys (which gives Keys alone); set one or neither.
	CardVerify func(ctx context.Context, cardURL string) (a2acard.VerifyOptions, error)
	// RequireSignedCards refuses a card unless one of its signatures
	// verifies with CardVerify or CardKeys (one of which is then
	// required). Without it, an unsigned card is accepted, while a signed
	// card is still verified when either is set and refused when its
	// signature fails.
	RequireSignedCards bool
	// WrapCalls, when set, wraps the transport of A2A calls (not of card
	// fetches): a host adds per-request proofs of the caller's workload
	// (WIMSE) there.
	WrapCalls func(http.RoundTripper) http.RoundTripper
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Client fetches remote agents' cards and calls the agents. It is safe for
// concurrent use.
type Client struct {
	cfg     Config
	fetcher *fetch.Fetcher
	calls   *http.Client
	log     *slog.Logger
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.CardKeys != nil && cfg.CardVerify != nil {
		return nil, fmt.Errorf("%w: set CardVerify or CardKeys, not both", ErrInvalidConfig)
	}
	if cfg.RequireSignedCards && cfg.CardKeys == nil && cfg.CardVerify == nil {
		return nil, fmt.Errorf("%w: RequireSignedCards needs CardVerify or CardKeys", ErrInvalidConfig)
	}
	if cfg.CardTimeout < 0 || cfg.MaxCardBytes < 0 || cfg.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	if cfg.MaxCardBytes == 0 {
		cfg.MaxCardBytes = DefaultMaxCardBytes
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: cfg.Logger}
	c.fetcher = fetch.New(fetch.Config{
		Client: cfg.HTTPClient, Timeout: cfg.CardTimeout, MaxBytes: cfg.MaxCardBytes,
		AllowHTTP: cfg.AllowHTTP, AllowPrivate: cfg.AllowPrivate, Logger: cfg.Logger,
	})
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if cfg.WrapCalls != nil {
		base = cfg.WrapCalls(base)
	}
	hc.Transport = &cappedTransport{base: base, max: cfg.MaxResponseBytes}
	// A call carries the caller's token for the endpoint's audience: it
	// never follows a redirect anywhere.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.calls = &hc
	return c, nil
}

// Card is a remote agent's card as fetched.
type Card struct {
	// AgentCard is the decoded card.
	AgentCard *a2a.AgentCard
	// Source is the URL the card came from (after same-origin redirects).
	Source string
	// Raw is the card as served.
	Raw []byte
	// Verified describes the signature that verified the card; nil when
	// no signature was verified.
	Verified *a2acard.Verified
	// Endpoint is the agent's JSON-RPC URL, the audience of the tokens
	// the agent accepts.
	Endpoint string
}

// CardURL returns the card URL of the agent whose A2A URL is agentURL.
func CardURL(agentURL string) string {
	return strings.TrimSuffix(agentURL, "/") + CardPath
}

// FetchCard fetches the card at rawURL (a card URL, or an agent's A2A URL
// whose card is at [CardURL]) under the outbound-fetch rules, verifies its
// signature as Config says, and picks the agent's JSON-RPC endpoint, which
// must be on the card's origin unless the card's signature verified.
func (c *Client) FetchCard(ctx context.Context, rawURL string) (*Card, error) {
	if u, err := url.Parse(rawURL); err == nil && !strings.HasSuffix(u.Path, CardPath) {
		rawURL = CardURL(rawURL)
	}
	resp, err := c.fetcher.JSON(ctx, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("a2aremote: fetch card: %w", err)
	}
	card := &Card{Source: resp.URL, Raw: resp.Body}
	if err := json.Unmarshal(resp.Body, &card.AgentCard); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCard, err)
	}
	if err := c.verify(ctx, card); err != nil {
		return nil, err
	}
	if card.Endpoint, err = c.endpoint(card); err != nil {
		return nil, err
	}
	return card, nil
}

// verify applies the signature rules of Config to card.
func (c *Client) verify(ctx context.Context, card *Card) error {
	signed := len(card.AgentCard.Signatures) > 0
	checks := c.cfg.CardKeys != nil || c.cfg.CardVerify != nil
	if !checks || (!signed && !c.cfg.RequireSignedCards) {
		if signed {
			c.log.DebugContext(ctx, "a2aremote: signed card accepted without verification", slog.String("card", card.Source))
		}
		return nil
	}
	opts, err := c.verifyOptions(ctx, card.Source)
	if err != nil {
		return fmt.Errorf("a2aremote: trust bundle for %s: %w", card.Source, err)
	}
	v, err := a2acard.VerifyJSON(ctx, card.Raw, opts)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCard, card.Source, err)
	}
	card.Verified = v
	return nil
}

// verifyOptions are the options of Config.CardVerify, or those of
// Config.CardKeys: its keys alone.
func (c *Client) verifyOptions(ctx context.Context, cardURL string) (a2acard.VerifyOptions, error) {
	if c.cfg.CardVerify != nil {
		return c.cfg.CardVerify(ctx, cardURL)
	}
	keys, err := c.cfg.CardKeys(ctx, cardURL)
	if err != nil {
		return a2acard.VerifyOptions{}, err
	}
	return a2acard.VerifyOptions{Keys: keys}, nil
}

// endpoint returns the card's JSON-RPC URL after checking it.
func (c *Client) endpoint(card *Card) (string, error) {
	ac := card.AgentCard
	ep := ""
	if ac.PreferredTransport == "" || ac.PreferredTransport == a2a.TransportProtocolJSONRPC {
		ep = ac.URL
	} else {
		for _, in := range ac.AdditionalInterfaces {
			if in.Transport == a2a.TransportProtocolJSONRPC {
				ep = in.URL
				break
			}
		}
	}
	if ep == "" {
		return "", fmt.Errorf("%w: no JSON-RPC endpoint", ErrCard)
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || !(u.Scheme == "https" || (u.Scheme == "http" && c.cfg.AllowHTTP)) {
		return "", fmt.Errorf("%w: endpoint %q is not an acceptable URL", ErrCard, ep)
	}
	src, err := url.Parse(card.Source)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCard, err)
	}
	if card.Verified == nil && origin(u) != origin(src) {
		return "", fmt.Errorf("%w: endpoint %s is on another origin than the unverified card", ErrCard, origin(u))
	}
	return ep, nil
}

// origin is u's scheme, host and port, the default port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// cappedTransport caps every response body at max bytes, and notes a 401
// or 403 answer with its challenges for the call (see refusal).
type cappedTransport struct {
	base http.RoundTripper
	max  int64
}

// RoundTrip sends r and caps the response body.
func (t *cappedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		note(r.Context(), resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

var errResponseTooLarge = errors.New("a2aremote: response too large")

type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

// Read reads up to the cap and fails past it.
func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Exactly max bytes is fine: only more is refused.
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

// Close closes the body.
func (b *cappedBody) Close() error { return b.rc.Close() }
