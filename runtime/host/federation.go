package host

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/federation"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/store"
)

// Audit actions of federation.
const (
	// actionFederationBundle records a federated trust domain's bundle
	// accepted (allow) or refused (deny).
	actionFederationBundle = "federation.bundle"
)

// nsFederation holds the federated trust domains' last accepted bundles,
// by trust domain name.
const nsFederation = "federation.bundles"

// newFederation prepares the bundles of the federated trust domains
// (federation.trust_domains): those kept in the store at once, the
// endpoints fetched by the "federation" task. Without federated domains
// h.federation still answers for the own trust domain, so every
// validation goes through one set.
func (h *Host) newFederation(ctx context.Context) error {
	var peers []federation.Peer
	for _, d := range h.cfg.Federation.TrustDomains {
		p := federation.Peer{TrustDomain: d.Name, EndpointURL: d.BundleEndpoint,
			Profile: federation.Profile(d.EffectiveProfile()), EndpointSPIFFEID: d.EndpointSPIFFEID}
		if d.BundleFile != "" {
			b, err := readConfigFile(d.BundleFile, maxFederationFile)
			if err != nil {
				return fmt.Errorf("host: federation.trust_domains %s: bundle_file: %w", d.Name, err)
			}
			p.Bundle = b
		}
		if d.CAFile != "" {
			pem, err := readConfigFile(d.CAFile, maxFederationFile)
			if err != nil {
				return fmt.Errorf("host: federation.trust_domains %s: ca_file: %w", d.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("host: federation.trust_domains %s: ca_file %s holds no PEM certificate", d.Name, d.CAFile)
			}
			p.Roots = pool
		}
		peers = append(peers, p)
	}
	private := h.cfg.Auth.AllowPrivateFetch
	set, err := federation.New(ctx, federation.Config{
		Own:          h.ident.Bundle,
		Peers:        peers,
		Store:        federationStore{h.store},
		AllowPrivate: private,
		AllowHTTP:    private,
		Now:          h.now,
		Logger:       h.log.With("component", "federation"),
		OnUpdate:     h.federationUpdated,
		OnRefuse:     h.federationRefused,
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.federation = set
	if len(peers) > 0 {
		h.tasks = append(h.tasks, Task{Name: "federation", Run: set.Run})
	}
	return nil
}

// maxFederationFile caps a bundle or CA file read at start.
const maxFederationFile = 1 << 20

// readConfigFile reads a file named in the configuration, up to max bytes.
func readConfigFile(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return b, nil
}

func (h *Host) federationUpdated(td string, seq uint64) {
	h.log.Info("federated bundle accepted", slog.String("trust_domain", td), slog.Uint64("sequence", seq))
	h.auditFederation(td, audit.DecisionAllow, audit.OutcomeOK, fmt.Sprintf("bundle of %s accepted, sequence %d", td, seq))
}

func (h *Host) federationRefused(td, endpoint string, err error) {
	h.auditFederation(td, audit.DecisionDeny, audit.OutcomeDenied, fmt.Sprintf("bundle of %s from %s refused: %v", td, endpoint, err))
}

func (h *Host) auditFederation(td, decision, outcome, reason string) {
	if h.audit == nil {
		return
	}
	rec := audit.Record{Time: h.now().UTC(), Action: actionFederationBundle, Resource: "spiffe://" + td,
		Decision: decision, Policy: "federation", Reason: reason, Outcome: outcome}
	if err := h.audit.Append(context.Background(), rec); err != nil {
		h.log.Error("could not record a federated bundle", slog.String("trust_domain", td), slog.Any("error", err))
	}
}

// federatedClients are the workloads of federated trust domains the
// embedded authorization server admits as clients.
func (h *Host) federatedClients() []authserver.FederatedClient {
	var out []authserver.FederatedClient
	for _, d := range h.cfg.Federation.TrustDomains {
		for _, c := range d.Clients {
			out = append(out, authserver.FederatedClient{SPIFFEID: c.SPIFFEID, Scopes: c.Scopes})
		}
	}
	return out
}

// federationStore keeps accepted bundles in the host's store.
type federationStore struct{ st store.Store }

func (s federationStore) Load(ctx context.Context, td string) ([]byte, error) {
	rec, err := s.st.Get(ctx, nsFederation, td)
	if errors.Is(err, store.ErrNotFound) {
		return nil, federation.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return rec.Value, nil
}

func (s federationStore) Save(ctx context.Context, td string, bundle []byte) error {
	_, err := s.st.Put(ctx, nsFederation, td, bundle, store.PutOptions{})
	return err
}

// peerDomain returns the federated trust domain whose peer origin
// (federation.trust_domains[].peers) o is.
func (h *Host) peerDomain(o string) (config.FederatedDomainConfig, bool) {
	o = strings.ToLower(o)
	for _, d := range h.cfg.Federation.TrustDomains {
		for _, p := range d.Peers {
			if po, err := config.ParseOrigin(p); err == nil && po == o {
				return d, true
			}
		}
	}
	return config.FederatedDomainConfig{}, false
}

// idjagAudiences are the other domains' authorization servers the
// embedded one issues ID-JAGs for (auth.id_jag).
func (h *Host) idjagAudiences() []authserver.IDJAGAudience {
	var out []authserver.IDJAGAudience
	for _, a := range h.cfg.Auth.IDJAG {
		out = append(out, authserver.IDJAGAudience{Issuer: a.Issuer, Scopes: a.Scopes})
	}
	return out
}
