package host

// A delegation between hosted agents goes over A2A, through the same
// server path a caller from outside takes, with the same checks: the
// calling agent gets a token for the called agent's A2A URL at the
// host's authorization server (the user stays sub and the calling agent
// goes into act, by token exchange, when the task holds the user's
// token; the agent's own client credentials otherwise), the request
// carries the transaction's Txn-Token, and the calling agent's WIT with a
// Workload-Proof-Token bound to both tokens. The request is served in
// process by the host's own handler: nothing leaves the host.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/agenthost/agenthost/a2a/a2aremote"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// hopKey carries, in a delegation's context, the calling agent and the
// Txn-Token its request carries, for the hop's transport.
type hopKey struct{}

type hop struct {
	agent    string
	txnToken string
}

// a2aHops is the client of delegations between hosted agents and the
// agents' WITs it proves them with.
type a2aHops struct {
	client *a2aremote.Client

	mu   sync.Mutex
	wits map[string]heldWIT
}

// heldWIT is a WIT-SVID of an agent and its key, held by the host.
type heldWIT struct {
	token   string
	key     crypto.Signer
	issued  time.Time
	expires time.Time
}

// newA2AHops builds the delegation client over handler (the host's own
// HTTP handler).
func (h *Host) newA2AHops(handler http.Handler) error {
	wt, err := wimse.NewTransport(wimse.TransportConfig{
		Base:       handlerTransport{handler},
		Credential: h.hopCredential,
		Mode:       h.proofMode(),
		Clock:      h.now,
	})
	if err != nil {
		return fmt.Errorf("host: a2a hops: %w", err)
	}
	c, err := a2aremote.New(a2aremote.Config{HTTPClient: &http.Client{Transport: txnHeader{next: wt}},
		AllowHTTP: true, AllowPrivate: true, Logger: h.log.With("component", "a2a-hops")})
	if err != nil {
		return fmt.Errorf("host: a2a hops: %w", err)
	}
	h.hops = &a2aHops{client: c, wits: map[string]heldWIT{}}
	return nil
}

// txnHeader puts the hop's Txn-Token on the request, before the WIMSE
// transport binds it into the proof.
type txnHeader struct{ next http.RoundTripper }

func (t txnHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	if hp, ok := r.Context().Value(hopKey{}).(hop); ok && hp.txnToken != "" {
		r = r.Clone(r.Context())
		r.Header.Set(txntoken.HeaderName, hp.txnToken)
	}
	return t.next.RoundTrip(r)
}

// hopCredential is the calling agent's WIT and key, issued by the CA to
// the host, which holds the agent's keys; renewed at half its lifetime.
func (h *Host) hopCredential(ctx context.Context) (string, crypto.Signer, error) {
	hp, ok := ctx.Value(hopKey{}).(hop)
	if !ok {
		return "", nil, errors.New("host: a hop without a calling agent")
	}
	hs := h.hops
	now := h.now()
	hs.mu.Lock()
	w, ok := hs.wits[hp.agent]
	hs.mu.Unlock()
	if ok && now.Before(w.issued.Add(w.expires.Sub(w.issued)/2)) {
		return w.token, w.key, nil
	}
	sid, err := workloadapi.IDFromIdentity(h.agentIDs[hp.agent])
	if err != nil {
		return "", nil, err
	}
	tok, key, exp, err := h.ident.NewWITSVID(ctx, sid)
	if err != nil {
		return "", nil, fmt.Errorf("host: the WIT of %s: %w", hp.agent, err)
	}
	hs.mu.Lock()
	hs.wits[hp.agent] = heldWIT{token: tok, key: key, issued: now, expires: exp}
	hs.mu.Unlock()
	return tok, key, nil
}

// forgetWIT drops the WIT the host holds for agent (a quarantine).
func (hs *a2aHops) forgetWIT(agent string) {
	if hs == nil {
		return
	}
	hs.mu.Lock()
	delete(hs.wits, agent)
	hs.mu.Unlock()
}

// delegate runs a task another agent delegated (mediator.AgentRunner)
// over A2A and returns its final answer. The new task acts for the same
// user, in the same transaction.
func (h *Host) delegate(ctx context.Context, agent, input string, parent mediator.Caller) (string, error) {
	if ra, ok := h.a2aRemotes[agent]; ok {
		return ra.call(ctx, input, parent)
	}
	if _, ok := h.agentIDs[agent]; !ok {
		return "", delegatedError(fmt.Errorf("%w: %q", supervisor.ErrUnknownAgent, agent))
	}
	// An agent the supervisor is still starting (or restarting) is waited
	// for, as `agenthost run` waits.
	h.waitStarting(ctx, agent, delegateStartWait)
	card, ok := h.a2a.Card(agent)
	if !ok {
		return "", fmt.Errorf("host: agent %s is not served over A2A", agent)
	}
	target := &a2aremote.Card{AgentCard: card, Endpoint: h.agentA2AURL(agent)}
	// The mediator minted the delegated task's Txn-Token (in ctx); a
	// caller without one gets one here.
	txnTok, ok := mediator.TxnTokenFromContext(ctx)
	if !ok {
		var err error
		if txnTok, err = (txnSource{h}).TxnToken(ctx, parent, txntoken.Object{}, mediator.TxnRequestContext(parent)); err != nil {
			return "", fmt.Errorf("host: the Txn-Token of the delegation to %s: %w", agent, err)
		}
	}
	ctx = context.WithValue(ctx, hopKey{}, hop{agent: parent.Agent, txnToken: txnTok})
	msg := a2aremote.NewTextMessage(input)
	msg.Metadata = map[string]any{parentTaskKey: parent.TaskID}
	res, err := h.hops.client.Stream(ctx, target, func(ctx context.Context, audience string) (string, error) {
		return h.hopToken(ctx, parent, audience)
	}, msg, func(a2aremote.Update) error { return nil })
	if err != nil {
		var te *a2aremote.TaskError
		if errors.As(err, &te) && te.Message != "" {
			return "", errors.New(te.Message)
		}
		return "", err
	}
	return res.Text, nil
}

// hopToken is the calling agent's token for the called agent's A2A URL
// audience: for the transaction's user when the task holds their token
// (the token for the chain of delegating agents, exchanged by the calling
// agent), else on the calling agent's own authority.
func (h *Host) hopToken(ctx context.Context, parent mediator.Caller, audience string) (string, error) {
	d := h.delegation
	c, err := d.client(parent.Agent)
	if err != nil {
		return "", err
	}
	md := h.as.Metadata()
	req := oauth.TokenRequest{Server: &md, Resource: audience, Bearer: true}
	d.mu.Lock()
	u, held := d.users[parent.Txn]
	var user heldUser
	if held {
		user = *u
	}
	d.mu.Unlock()
	if held && user.subject == parent.Subject {
		agents := append(append([]string(nil), parent.Chain...), parent.Agent)
		req.Subject = user.subject
		req.SubjectKey = user.key + "|" + fmt.Sprint(agents)
		txn := parent.Txn
		req.SubjectTokenSource = func(ctx context.Context) (string, error) { return d.subjectToken(ctx, txn, agents) }
	}
	tok, err := c.Token(ctx, req)
	if err != nil {
		return "", fmt.Errorf("host: %s's token for %s: %w", parent.Agent, audience, err)
	}
	return tok.AccessToken, nil
}

// proofMode is the workload proof of the host's hops (a2a.proof).
func (h *Host) proofMode() wimse.Mode {
	if h.cfg.A2A.Proof == config.ProofHTTPSignature {
		return wimse.ModeHTTPSig
	}
	return wimse.ModeWPT
}
