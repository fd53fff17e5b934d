package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/console"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// The web console (runtime/console) is served at console.Path on the
// issuer's origin whenever users can sign in (auth.users). It is a client
// of the host's own authorization server, the built-in public client
// ConsoleClientID; its pages read and act on the host through
// consoleBackend, and it keeps its sessions in the host's store
// (namespaces console.*), shared by every host of a deployment.

// ConsoleClientID is the client_id of the public client the host registers
// at its embedded authorization server for the console.
const ConsoleClientID = "agenthost-console"

// ConsoleClient is the console's client as the host whose issuer is issuer
// registers it: public (no secret), the authorization code grant with
// PKCE, the redirect URI <issuer>/console/callback, and the scopes openid
// and profile (the userinfo endpoint, the user's name).
func ConsoleClient(issuer string) authserver.StaticClient {
	return authserver.StaticClient{
		ID:           ConsoleClientID,
		Name:         "agenthost console",
		AuthMethod:   oauth.AuthNone,
		RedirectURIs: []string{console.RedirectURI(issuer)},
		GrantTypes:   []string{oauth.GrantAuthorizationCode},
		Scopes:       slices.Clone(console.Scopes),
	}
}

// consoleOn reports whether the host serves the console: when users can
// sign in.
func (h *Host) consoleOn() bool { return len(h.cfg.Auth.Users) > 0 }

// addConsoleClient adds the console's client to the static clients, when
// the host serves the console.
func (h *Host) addConsoleClient(clients []authserver.StaticClient) ([]authserver.StaticClient, error) {
	if slices.ContainsFunc(clients, func(c authserver.StaticClient) bool { return c.ID == ConsoleClientID }) {
		return nil, fmt.Errorf("host: auth.clients lists %s, the client the host registers for its console", ConsoleClientID)
	}
	if !h.consoleOn() {
		return clients, nil
	}
	return append(clients, ConsoleClient(h.Issuer())), nil
}

// consoleHTTPTimeout bounds the console's requests to the authorization
// server.
const consoleHTTPTimeout = 10 * time.Second

// mountConsole serves the console under console.Path, and keeps the task
// ring it shows.
func (h *Host) mountConsole(mux *http.ServeMux) error {
	if !h.consoleOn() {
		return nil
	}
	h.consoleTasks = console.NewTaskLog(h.now)
	c, err := console.New(console.Config{
		Backend:  consoleBackend{h},
		Issuer:   h.Issuer(),
		Metadata: h.as.Metadata(),
		ClientID: ConsoleClientID,
		Admins:   h.cfg.Console.Admins,
		// The console reaches its authorization server in process:
		// the same handler the listener serves, without a round trip
		// through the listener (whose certificate, with listen.tls,
		// may be one only other workloads verify).
		HTTPClient: &http.Client{Transport: handlerTransport{h.as.Handler()}, Timeout: consoleHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		// Sessions, sign-ins in progress and the cookie-sealing key are
		// kept in the host's store, so that the hosts of a deployment
		// sharing it serve one console (and a restart signs nobody
		// out); the host's purge reclaims their expired records.
		Store:  h.store,
		Now:    h.now,
		Logger: h.log.With("component", "console"),
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	mux.Handle(console.Path, c.Handler())
	h.tasks = append(h.tasks, Task{Name: "console", Run: c.Run})
	return nil
}

// consoleBackend is the host as the console sees it.
type consoleBackend struct{ h *Host }

var _ console.Backend = consoleBackend{}

// consoleAttestTimeout bounds the measurement of one agent for the agents
// page (a binary hashed in the last minute is not hashed again).
const consoleAttestTimeout = 5 * time.Second

// Agents implements console.AgentSource: the supervisor's view of each
// agent, its pinned binary digest and what its running process measures.
func (b consoleBackend) Agents(ctx context.Context) ([]console.Agent, error) {
	h := b.h
	var out []console.Agent
	for _, a := range h.Agents(ctx) {
		ca := console.Agent{Name: a.Name, SPIFFEID: a.Identity, State: a.State, PID: a.PID, Restarts: a.Restarts,
			LastError: a.LastError, Since: a.Since, BinarySHA256: h.agentDigests[a.Name], Sandbox: a.Sandbox,
			Description: a.Description, Version: a.Version}
		if a.SVIDExpiresAt != nil && a.State != localapi.StateQuarantined {
			ca.SVIDExpires = *a.SVIDExpiresAt
		}
		if a.State == localapi.StateRunning && a.PID != 0 {
			actx, cancel := context.WithTimeout(ctx, consoleAttestTimeout)
			ca.Attestation, ca.MeasuredSHA256 = h.attestAgent(actx, a.Name)
			cancel()
		}
		out = append(out, ca)
	}
	return out, nil
}

// Quarantine implements console.AgentSource.
func (b consoleBackend) Quarantine(ctx context.Context, agent, reason string) error {
	return consoleError(b.h.Quarantine(ctx, agent, reason))
}

// Release implements console.AgentSource.
func (b consoleBackend) Release(ctx context.Context, agent, reason string) error {
	return consoleError(b.h.Release(ctx, agent, reason))
}

// consoleError gives the host's refusals the console's sentinels.
func consoleError(err error) error {
	switch {
	case errors.Is(err, localapi.ErrUnknownAgent):
		return fmt.Errorf("%w: %w", console.ErrUnknownAgent, err)
	case errors.Is(err, localapi.ErrNotQuarantined):
		return fmt.Errorf("%w: %w", console.ErrNotQuarantined, err)
	}
	return err
}

// Tasks implements console.TaskSource: the task ring, each running task
// with the approval requests its agent waits for on its user's behalf.
func (b consoleBackend) Tasks(ctx context.Context) []console.Task {
	list := b.h.consoleTasks.List()
	pending := map[string][]console.Approval{}
	for i, t := range list {
		if t.State != console.TaskRunning || t.User == "" {
			continue
		}
		if _, ok := pending[t.User]; !ok {
			pending[t.User], _ = b.Approvals(ctx, t.User)
		}
		list[i].Waiting = waitingFor(t, pending[t.User])
	}
	return list
}

// WatchTask implements console.TaskSource.
func (b consoleBackend) WatchTask(ctx context.Context, id string) (console.Task, <-chan struct{}, bool) {
	t, changed, ok := b.h.consoleTasks.Watch(id)
	if ok && t.State == console.TaskRunning && t.User != "" {
		pending, _ := b.Approvals(ctx, t.User)
		t.Waiting = waitingFor(t, pending)
	}
	return t, changed, ok
}

// waitingFor are the requests of pending that a call of t's agent made
// since t started (to the second the records keep).
func waitingFor(t console.Task, pending []console.Approval) []console.Approval {
	var out []console.Approval
	for _, a := range pending {
		if a.Agent == t.Agent && !a.Created.Before(t.Started.Truncate(time.Second)) {
			out = append(out, a)
		}
	}
	return out
}

// Approvals implements console.ApprovalSource: the requests pending at the
// authorization server, for one user or for every configured user.
func (b consoleBackend) Approvals(ctx context.Context, user string) ([]console.Approval, error) {
	h := b.h
	users := []string{user}
	if user == "" {
		users = users[:0]
		for _, u := range h.cfg.Auth.Users {
			users = append(users, u.Name)
		}
	}
	var out []console.Approval
	for _, u := range users {
		list, err := h.as.PendingApprovals(ctx, u)
		if err != nil {
			return out, fmt.Errorf("host: approvals of %s: %w", u, err)
		}
		for _, a := range list {
			ca := console.Approval{ID: a.ID, User: a.User, Client: a.ClientID, BindingMessage: a.BindingMessage,
				Created: a.Created, Expires: a.Expires}
			if a.ClientName != "" {
				ca.Client = a.ClientName
			}
			if h.consent != nil {
				ca.URL = h.consent.PageURL(a.ID)
			}
			var details []oauth.ToolCallDetail
			if json.Unmarshal(a.AuthorizationDetails, &details) == nil {
				for _, d := range details {
					if d.Type == oauth.AuthorizationDetailsToolCall {
						ca.Tool, ca.Agent = d.Tool, d.Agent
						break
					}
				}
			}
			out = append(out, ca)
		}
	}
	slices.SortStableFunc(out, func(x, y console.Approval) int { return x.Created.Compare(y.Created) })
	return out, nil
}

// AuditRead implements console.AuditSource.
func (b consoleBackend) AuditRead(ctx context.Context, from int64, limit int) ([]audit.Entry, error) {
	return b.h.AuditRead(ctx, from, limit)
}

// AuditTrace implements console.AuditSource.
func (b consoleBackend) AuditTrace(ctx context.Context, id string) (*audit.TraceNode, error) {
	return b.h.AuditTrace(ctx, id)
}

// AuditCheckpoint implements console.AuditSource: the latest checkpoint,
// opened with the host's verifier key.
func (b consoleBackend) AuditCheckpoint(ctx context.Context) (console.Checkpoint, error) {
	note, vkey, err := b.h.AuditCheckpoint(ctx)
	if err != nil {
		return console.Checkpoint{}, err
	}
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		return console.Checkpoint{}, fmt.Errorf("host: %w", err)
	}
	tree, err := audit.OpenCheckpoint(note, v)
	if err != nil {
		return console.Checkpoint{}, fmt.Errorf("host: %w", err)
	}
	return console.Checkpoint{Size: tree.N, Hash: tree.Hash.String(), Origin: v.Name(), VerifierKey: vkey}, nil
}

// AuditVerify implements console.AuditSource, as `agenthost audit verify`
// does without a pinned key: with the host's own.
func (b consoleBackend) AuditVerify(ctx context.Context) (console.Verification, error) {
	res, err := b.h.AuditVerify(ctx)
	if err != nil {
		return console.Verification{}, err
	}
	r := res.Report
	v := console.Verification{Size: r.Size, Records: r.Records, Checkpoints: r.Checkpoints, Covered: r.Covered,
		TreeHash: r.TreeHash.String()}
	if r.Problem != nil {
		v.Problem = r.Problem.String()
	}
	return v, nil
}

// Trust implements console.TrustSource: the CA's authorities (or, with an
// upstream Workload API, what its bundle says), the authorization
// server's signing keys and the federated trust domains.
func (b consoleBackend) Trust(context.Context) (console.Trust, error) {
	h := b.h
	t := console.Trust{TrustDomain: h.cfg.TrustDomain}
	if h.ca != nil {
		t.Source = "Issued by the host's own certificate authority"
		for _, a := range h.ca.Status() {
			ca := console.Authority{Kind: a.Kind, Slot: a.Slot, Key: a.KeyID, NotBefore: a.IssuedAt, NotAfter: a.NotAfter, Rotates: a.Rotates}
			if c := a.Certificate; c != nil {
				ca.Key = c.Subject.String() + " serial " + c.SerialNumber.Text(16)
			}
			t.Authorities = append(t.Authorities, ca)
		}
	} else {
		t.Source = "Taken from the Workload API at " + h.cfg.Identity.WorkloadAPI
		bundle := h.ident.Bundle()
		for _, c := range bundle.X509Authorities() {
			t.Authorities = append(t.Authorities, console.Authority{Kind: "x509", Key: c.Subject.String() + " serial " + c.SerialNumber.Text(16),
				NotBefore: c.NotBefore, NotAfter: c.NotAfter})
		}
		kids := make([]string, 0)
		for kid := range bundle.JWTAuthorities() {
			kids = append(kids, kid)
		}
		slices.Sort(kids)
		for _, kid := range kids {
			t.Authorities = append(t.Authorities, console.Authority{Kind: "jwt", Key: kid})
		}
	}
	for _, k := range h.as.SigningKeys() {
		t.SigningKeys = append(t.SigningKeys, console.SigningKey{KID: k.KID, State: k.State, Activates: k.Activates, Retires: k.Retires})
	}
	if h.federation != nil {
		for _, p := range h.federation.Status() {
			f := console.FederatedDomain{TrustDomain: p.TrustDomain, Endpoint: p.EndpointURL, Profile: string(p.Profile),
				HasBundle: p.HasBundle, Sequence: p.Sequence, LastSuccess: p.LastSuccess, NextRefresh: p.NextRefresh, Failures: p.Failures}
			if p.LastError != nil {
				f.LastError = p.LastError.Error()
			}
			t.Federated = append(t.Federated, f)
		}
	}
	return t, nil
}

// UserActive implements console.UserSource: a configured user whose
// credentials were not revoked (session-revoked, credential-change) since
// signedIn.
func (b consoleBackend) UserActive(ctx context.Context, user string, signedIn time.Time) (bool, error) {
	if !b.h.isUser(user) {
		return false, nil
	}
	revoked, err := b.h.as.SubjectRevoked(ctx, user, signedIn)
	if err != nil {
		return false, fmt.Errorf("host: %w", err)
	}
	return !revoked, nil
}
