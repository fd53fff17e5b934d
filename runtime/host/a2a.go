package host

// Hosted agents over A2A (DESIGN §4): the host constructs the A2A server
// (a2a/a2aserver) for its agents, each a protected resource of the
// embedded authorization server at <origin>/a2a/<agent>, and its Runner,
// which turns a verified A2A request into a task. A delegation between
// hosted agents goes through that same server path (delegate, in
// a2a_delegate.go), with the user kept as sub, the delegating agents in
// act, and the calling agent's WIT and a WPT on the request.

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/httpaudit"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// cardResignEvery is how often the agents' cards are signed again: well
// within the lifetime of the X.509-SVIDs they are signed with.
const cardResignEvery = 20 * time.Minute

// a2aOrigin is the origin the A2A server is served at: the issuer's.
func (h *Host) a2aOrigin() string {
	u, err := url.Parse(h.Issuer())
	if err != nil {
		return h.Issuer()
	}
	return u.Scheme + "://" + u.Host
}

// agentA2AURL is agent's A2A URL: its endpoint, card base and resource
// identifier (the aud of the tokens it takes).
func (h *Host) agentA2AURL(agent string) string {
	return h.a2aOrigin() + a2aserver.PathPrefix + agent
}

// a2aResources are the agents as resources of the authorization server.
// A token for an agent needs no scope: its audience is the agent, and
// policy decides what the task may do.
func (h *Host) a2aResources() []authserver.Resource {
	out := make([]authserver.Resource, 0, len(h.cfg.Agents))
	for _, a := range h.cfg.Agents {
		out = append(out, authserver.Resource{URI: h.agentA2AURL(a.Name)})
	}
	return out
}

// a2aAgents holds what each agent said of itself (Describe), for its card.
type a2aAgents struct {
	mu   sync.Mutex
	info map[string]a2acard.AgentInfo
}

// list returns the cards' inputs, one per configured agent.
func (h *Host) a2aAgentInfos() []a2acard.AgentInfo {
	h.a2aInfo.mu.Lock()
	defer h.a2aInfo.mu.Unlock()
	out := make([]a2acard.AgentInfo, 0, len(h.cfg.Agents))
	for _, a := range h.cfg.Agents {
		info, ok := h.a2aInfo.info[a.Name]
		if !ok {
			info = a2acard.AgentInfo{Name: a.Name}
		}
		out = append(out, info)
	}
	return out
}

// describedForA2A keeps what agent said of itself and signs its card
// again with it.
func (h *Host) describedForA2A(agent string, d *pluginpb.DescribeResponse) {
	info := a2acard.AgentInfo{Name: agent, DisplayName: d.GetName(), Description: d.GetDescription(), Version: d.GetVersion()}
	for _, s := range d.GetSkills() {
		info.Skills = append(info.Skills, a2acard.Skill{ID: s.GetId(), Name: s.GetName(), Description: s.GetDescription(),
			Tags: s.GetTags(), Examples: s.GetExamples()})
	}
	h.a2aInfo.mu.Lock()
	if h.a2aInfo.info == nil {
		h.a2aInfo.info = map[string]a2acard.AgentInfo{}
	}
	h.a2aInfo.info[agent] = info
	h.a2aInfo.mu.Unlock()
	if h.a2a == nil {
		return
	}
	if err := h.a2a.SetAgents(context.Background(), h.a2aAgentInfos()); err != nil {
		// What a plugin says of itself is untrusted: a description the
		// card cannot hold keeps the card it had.
		h.log.Warn("agent card not updated", slog.String("agent", agent), slog.Any("error", err))
	}
}

// mountA2A serves the hosted agents over A2A, behind the WIMSE verifier
// (a workload proof is checked when one is presented).
func (h *Host) mountA2A(mux *http.ServeMux) error {
	md := h.as.Metadata()
	algs := make([]string, 0, len(dpop.DefaultAlgorithms))
	for _, a := range dpop.DefaultAlgorithms {
		algs = append(algs, string(a))
	}
	srv, err := a2aserver.New(context.Background(), a2aserver.Config{
		BaseURL: h.a2aOrigin(),
		Agents:  h.a2aAgentInfos(),
		Runner:  a2aRunner{h},
		Authenticator: func(agent, res, mdURL string) (a2aserver.Authenticator, error) {
			dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: storeReplayCache{kv: h.store, now: h.now}, Now: h.now})
			if err != nil {
				return nil, err
			}
			return resource.New(resource.Config{
				Resource: res, MetadataURL: mdURL, Issuer: md.Issuer, Keys: h.as.Keys(),
				Revoked: h.as.Revoked, SubjectRevoked: h.as.SubjectRevoked, Issuers: h.resourceIssuers(), DPoP: dv, Now: h.now,
				CheckCaller: h.checkWorkloadProof, Logger: h.log.With("component", "a2a", "agent", agent),
			})
		},
		AuthServer:       &md,
		OtherAuthServers: h.authorizationServers()[1:],
		MutualTLS:        h.cfg.Listen.TLS != nil,
		DPoPAlgorithms:   algs,
		CardKey:          h.cardKey,
		VerifyTxnToken:   h.verifyTxnToken,
		OnMalformed: func(ctx context.Context, agent string, caller *resource.Caller, code int, reason string) {
			if err := h.audit.Record(ctx, mediator.Record{Time: h.now().UTC(), Agent: "a2a:" + caller.ClientID,
				Identity: caller.ClientID, Subject: caller.Subject, TokenJTI: caller.TokenID, Action: "a2a.request",
				Resource: agent, Decision: "deny", Policy: "json-rpc", Reason: fmt.Sprintf("%d %s", code, reason),
				Outcome: "denied"}); err != nil {
				h.log.Error("audit of a malformed A2A request failed", "err", err)
			}
		},
		Logger: h.log.With("component", "a2a"),
		Now:    h.now,
	})
	if err != nil {
		return fmt.Errorf("host: a2a: %w", err)
	}
	wv, err := h.workloadVerifier()
	if err != nil {
		return err
	}
	// Every request refused before it reaches an agent is audited.
	denials, err := httpaudit.New(httpaudit.Config{Auditor: h.audit, Now: h.now, Logger: h.log})
	if err != nil {
		return fmt.Errorf("host: a2a: %w", err)
	}
	inner := http.NewServeMux()
	srv.Mount(inner)
	mux.Handle(a2aserver.PathPrefix, denials.Wrap("a2a.request", a2aAgentOf, wv.Middleware(inner)))
	mux.Handle("GET /.well-known/oauth-protected-resource"+a2aserver.PathPrefix, inner)
	h.a2a = srv
	if err := h.newA2AHops(withRecover(h.log, mux)); err != nil {
		return err
	}
	h.closers = append(h.closers, func() { _ = srv.Close() })
	h.tasks = append(h.tasks, Task{Name: "a2a cards", Run: func(ctx context.Context) error {
		t := time.NewTicker(cardResignEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := srv.SetAgents(ctx, h.a2aAgentInfos()); err != nil && ctx.Err() == nil {
					h.log.Warn("agent cards not signed again", slog.Any("error", err))
				}
			}
		}
	}})
	return nil
}

// witKeys finds a WIT authority key of the trust domain by kid, in the
// CA's current bundle (rotation included).
func (h *Host) witKeys(ctx context.Context, kid string) (crypto.PublicKey, error) {
	kf, err := wimse.WITAuthorityKeys(h.bundleJSON())
	if err != nil {
		return nil, err
	}
	return kf(ctx, kid)
}

// cardKey is agent's card-signing key: the key of a fresh X.509-SVID of
// the agent, its chain in the signature's x5c, so a verifier holding the
// trust domain's bundle checks the card is the agent's.
func (h *Host) cardKey(ctx context.Context, agent string) (a2acard.Key, error) {
	id, ok := h.agentIDs[agent]
	if !ok {
		return a2acard.Key{}, fmt.Errorf("host: no agent %q", agent)
	}
	sid, err := workloadapi.IDFromIdentity(id)
	if err != nil {
		return a2acard.Key{}, err
	}
	svid, err := h.ident.NewX509SVID(ctx, sid)
	if err != nil {
		return a2acard.Key{}, fmt.Errorf("host: the card key of %s: %w", agent, err)
	}
	kid, err := jose.Thumbprint(svid.PrivateKey.Public())
	if err != nil {
		return a2acard.Key{}, err
	}
	return a2acard.Key{Signer: svid.PrivateKey, KID: kid, Chain: svid.Certificates}, nil
}

// CardVerifyOptions are the options that verify a hosted agent's card:
// the chain in its signature must lead to the trust domain's X.509
// authorities and name the agent.
func (h *Host) CardVerifyOptions(agent string) a2acard.VerifyOptions {
	roots := x509.NewCertPool()
	for _, c := range h.ident.Bundle().X509Authorities() {
		roots.AddCert(c)
	}
	want := h.agentIDs[agent].String()
	return a2acard.VerifyOptions{Roots: roots, Now: h.now, CheckLeaf: func(leaf *x509.Certificate) error {
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
			return fmt.Errorf("the card is signed by another workload than %s", want)
		}
		return nil
	}}
}

// checkWorkloadProof is what the host's resources (A2A agents, MCP
// servers) require beyond a valid token: a token whose client is a hosted
// agent is taken only with that agent's WIT and a proof of it (the host
// always sends them on its own hops), so a token taken from the host is no
// use alone; and a proof presented must be by the token's client.
func (h *Host) checkWorkloadProof(r *http.Request, c *resource.Caller) error {
	peer, hasPeer := wimse.PeerFromContext(r.Context())
	switch {
	case hasPeer && peer.Identity().String() != c.ClientID:
		return errors.New("the workload proof is not by the token's client")
	case !hasPeer && h.agentOf(c.ClientID) != "":
		return errors.New("a hosted agent's token needs the agent's workload proof (Workload-Identity-Token and Workload-Proof-Token)")
	}
	return nil
}

// workloadVerifier is the WIMSE verifier of the host's endpoints: it
// checks a WIT and its proof whenever a request presents one (the
// audience is the request's URL at the issuer's origin).
func (h *Host) workloadVerifier() (*wimse.Verifier, error) {
	if h.wimse != nil {
		return h.wimse, nil
	}
	// WITs of the own trust domain, and of each federated one with the
	// WIT authorities of its bundle as the federation keeps it: a
	// federated domain's agents present their WITs here as ours do. A
	// WIT of any other domain is refused.
	domains := map[string]wimse.Authority{h.ident.TrustDomain().Name(): {Keys: h.witKeys}}
	for _, d := range h.cfg.Federation.TrustDomains {
		keys, err := h.federation.WITKeys(d.Name)
		if err != nil {
			return nil, fmt.Errorf("host: federation.trust_domains: %w", err)
		}
		domains[d.Name] = wimse.Authority{Keys: keys}
	}
	wv, err := wimse.NewVerifier(wimse.Config{
		TrustDomains: domains,
		// The answer is WriteError's; the audit record of the refusal
		// says why (wimse's messages hold no token).
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			httpaudit.SetReason(w, err.Error())
			wimse.WriteError(w, err)
		},
		BaseURL:     h.a2aOrigin(),
		ReplayCache: wimse.NewMemoryReplayCache(0, h.now),
		Clock:       h.now,
		Logger:      h.log.With("component", "wimse"),
	})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h.wimse = wv
	return wv, nil
}

// a2aRunner runs the tasks the A2A server takes.
type a2aRunner struct{ h *Host }

// parentTaskKey is the message metadata under which the host's own
// delegations name the delegating task, for the audit trail.
const parentTaskKey = "agenthost/parent_task"

// Run implements a2aserver.Runner: the verified caller becomes the task's
// context. A token for a user (sub is not the client) makes the task act
// for that user; on a hop between hosted agents the transaction and its
// user come from the verified Txn-Token, and the delegating agents from
// act. A caller from outside begins a new transaction.
func (r a2aRunner) Run(ctx context.Context, req *a2aserver.Request, emit func(a2aserver.Event) error) (string, error) {
	h := r.h
	caller := req.Caller
	fromAgent := h.agentOf(caller.ClientID)
	c := mediator.Caller{ClientID: caller.ClientID, Scopes: caller.Scopes}
	if caller.Subject != caller.ClientID && h.agentOf(caller.Subject) == "" {
		c.Subject, c.SubjectSource = caller.Subject, audit.SubjectSourceToken
	}
	// The delegating agents, outermost first: act nests the latest
	// actor outside the earlier ones.
	var chain []string
	for a := caller.Actor; a != nil; a = a.Actor {
		name := h.agentOf(a.Subject)
		if name == "" {
			name = a.Subject
		}
		chain = append([]string{name}, chain...)
	}
	if fromAgent != "" && (len(chain) == 0 || chain[len(chain)-1] != fromAgent) {
		chain = append(chain, fromAgent)
	}
	c.Chain = chain
	peer, hasPeer := wimse.PeerFromContext(ctx)
	c.Via = "a2a from " + caller.ClientID
	if caller.Actor != nil {
		// The token's delegation, as it names it: sub, then act from the
		// latest actor inwards.
		acts := make([]string, 0, caller.Actor.Depth())
		for a := caller.Actor; a != nil; a = a.Actor {
			acts = append(acts, a.Subject)
		}
		c.Via += fmt.Sprintf(", token sub %s act %s", caller.Subject, strings.Join(acts, " < "))
	}
	if hasPeer {
		c.Via += fmt.Sprintf(", workload proof (%s) by %s verified", peer.Mode, peer.Identity())
	}

	var txn *taskTxn
	switch {
	case fromAgent != "" && req.TxnClaims != nil:
		// A hop between hosted agents: the transaction goes on, for the
		// user its Txn-Token names, who must be the access token's.
		if c.Subject != "" && req.TxnClaims.Subject != c.Subject {
			return "", a2aserver.Failed(fmt.Sprintf("the Txn-Token is for %q, the access token for %q", req.TxnClaims.Subject, c.Subject))
		}
		if c.Subject == "" && h.isUser(req.TxnClaims.Subject) {
			c.Subject, c.SubjectSource = req.TxnClaims.Subject, audit.SubjectSourceTxnToken
		}
		c.Txn = req.TxnClaims.Txn
		if p, ok := req.Metadata[parentTaskKey].(string); ok {
			c.ParentTask = p
		}
		txn = h.continuedTxn(req.Agent, req.TxnToken, req.TxnClaims)
	default:
		var err error
		if txn, err = h.beginTxn(ctx, req.Agent, taskSubject{name: c.Subject}); err != nil {
			return "", err
		}
		c.Txn = txn.txn
	}
	var (
		mu      sync.Mutex
		final   string
		failure string
	)
	events := func(ev localapi.TaskEvent) error {
		switch ev.Type {
		case "final":
			mu.Lock()
			final = ev.Text
			mu.Unlock()
		case "error":
			mu.Lock()
			failure = ev.Text
			mu.Unlock()
		case "approval":
			return emit(a2aserver.Event{Kind: a2aserver.EventApproval, Text: ev.Text, URL: ev.URL})
		case "thought", "tool_call":
			text := ev.Text
			if ev.Type == "tool_call" {
				text = "calling " + ev.Tool
			}
			if text != "" {
				return emit(a2aserver.Event{Kind: a2aserver.EventStatus, Text: text})
			}
		}
		return nil
	}
	if fromAgent == "" {
		// A transaction that began here: its approval requests (its
		// delegated tasks' included) reach this caller as auth-required.
		events = syncEmit(events)
		defer h.approvalSinks.add(c.Txn, events)()
	}
	err := h.runTask(ctx, req.Agent, req.Input, c, nil, txn, events)
	switch {
	case err != nil:
		return "", a2aserver.Failed(delegatedError(err).Error())
	case failure != "":
		return "", a2aserver.Failed(failure)
	}
	return final, nil
}

// continuedTxn is the Txn-Token holder of a task that continues a
// transaction on a hop between hosted agents: the verified token that
// came with the request, replaced at the Transaction Token Service (same
// txn and subject) when half its lifetime has passed.
func (h *Host) continuedTxn(agent, tok string, claims *txntoken.Claims) *taskTxn {
	t := &taskTxn{txn: claims.Txn, now: h.now, token: tok, claims: claims}
	id := h.agentIDs[agent]
	// taskTxn.current holds t.mu while it renews.
	t.renew = func(ctx context.Context) (string, *txntoken.Claims, error) {
		cur := t.token
		if cur == "" {
			return "", nil, errors.New("host: the task has no Txn-Token to replace")
		}
		return h.as.IssueTxnToken(ctx, authserver.TxnTokenRequest{SubjectToken: cur, RequestingWorkload: id.String()})
	}
	return t
}

// a2aURLs are the agents' A2A URLs, for the start message.
func (h *Host) a2aURLs() []string {
	out := make([]string, 0, len(h.cfg.Agents))
	for _, a := range h.cfg.Agents {
		out = append(out, a.Name+" "+h.agentA2AURL(a.Name))
	}
	return out
}

// agentOf is the name of the hosted agent whose identity is s (a SPIFFE
// ID), or "".
func (h *Host) agentOf(s string) string {
	id, err := credentials.ParseIdentity(s)
	if err != nil {
		return ""
	}
	return h.agentNamed(id)
}

// a2aAgentOf names the agent an A2A request is for, for its audit record.
func a2aAgentOf(r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.Path, a2aserver.PathPrefix)
	name, _, _ := strings.Cut(rest, "/")
	return name
}
