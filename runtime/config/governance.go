package config

import (
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
)

// PolicyConfig is the policy section: what decides, beyond the agents'
// grants, whether a call may be made.
type PolicyConfig struct {
	// Dir holds Cedar policies (*.cedar files). A relative path is
	// resolved against the directory of the configuration file. When set,
	// every mediated call and every tool call on a hosted MCP server must
	// also be permitted by these policies (the agents' grants and the
	// tokens' scopes still apply first). `agenthost policy reload` re-reads
	// them.
	Dir string `json:"dir"`
	// AuthZENEndpoint is an external PDP's OpenID AuthZEN 1.0 access
	// evaluation URL, asked instead of local Cedar policies: https, or
	// http on a loopback host for development.
	AuthZENEndpoint string `json:"authzen_endpoint"`
	// ServeAuthZEN serves the host's own policies as an AuthZEN PDP at
	// /access/v1/evaluation(s) for other enforcement points. Callers need
	// an access token from the host's authorization server with the scope
	// authzen:evaluate. Requires Dir.
	ServeAuthZEN bool `json:"serve_authzen"`
}

// AuditConfig is the audit section.
type AuditConfig struct {
	// CheckpointEvery is the number of records after which the audit log
	// writes a checkpoint (every commit is signed at once regardless; the
	// checkpoints are what goes to CheckpointDir and WitnessURL). Default
	// 1000.
	CheckpointEvery int `json:"checkpoint_every"`
	// CheckpointInterval is the longest time records stay after the last
	// checkpoint. Default 30s, at least 1s.
	CheckpointInterval time.Duration `json:"checkpoint_interval"`
	// VerifierKey pins the audit log's verifier key, a signed-note
	// verifier key ("agenthost-audit/<trust domain>+<hash>+<key>") as the
	// host prints it at start and `agenthost audit checkpoint` prints it:
	// the host refuses to start with another signing key. Optional.
	VerifierKey string `json:"verifier_key"`
	// SigningKeyEnv names an environment variable that holds the log's
	// signing key ("PRIVATE+KEY+agenthost-audit/<trust domain>+…"),
	// instead of the owner-only file audit/signing.key in the data
	// directory. Optional.
	SigningKeyEnv string `json:"signing_key_env"`
	// CheckpointDir is a directory, best on other storage than the data
	// directory, that receives every checkpoint as a file; the host
	// refuses to start on a log that does not extend the newest one, and
	// `agenthost audit verify --checkpoint DIR` checks the log against it.
	// A relative path is resolved against the directory of the
	// configuration file. Optional.
	CheckpointDir string `json:"checkpoint_dir"`
	// WitnessURL is the submission prefix of a transparency-log witness
	// (c2sp.org/tlog-witness): every checkpoint is POSTed to
	// <witness_url>/add-checkpoint with a consistency proof, and the
	// cosignature it returns is checked with WitnessKey (and kept in
	// CheckpointDir, if set). https, or http on a loopback host.
	// Optional.
	WitnessURL string `json:"witness_url"`
	// WitnessKey is the witness's verifier key for Ed25519 cosignatures
	// (c2sp.org/tlog-cosignature: "<name>+<hash>+<base64 of 0x04 and the
	// key>"). Required with WitnessURL.
	WitnessKey string `json:"witness_key"`
}

// resolvePaths makes CheckpointDir absolute.
func (a *AuditConfig) resolvePaths(abs func(string) string) {
	a.CheckpointDir = abs(a.CheckpointDir)
}

// audit validates the audit section.
func (v *validator) audit() {
	a := v.c.Audit
	if a.CheckpointEvery < 0 {
		v.invalid("audit.checkpoint_every", "must not be negative")
	}
	if a.CheckpointInterval != 0 && a.CheckpointInterval < time.Second {
		v.invalid("audit.checkpoint_interval", "must be at least 1s")
	}
	if a.VerifierKey != "" {
		vk, err := audit.ParseVerifier(a.VerifierKey)
		switch {
		case err != nil:
			v.invalid("audit.verifier_key", "%s is not a verifier key: %v", quoteValue(a.VerifierKey), err)
		default:
			if name, err := audit.KeyName(v.c.TrustDomain); err == nil && vk.Name() != name {
				v.invalid("audit.verifier_key", "is the key of %s, not of this trust domain's log (%s)", vk.Name(), name)
			}
		}
	}
	if a.SigningKeyEnv != "" && !validEnvName(a.SigningKeyEnv) {
		v.invalid("audit.signing_key_env", "%s is not an environment variable name", quoteValue(a.SigningKeyEnv))
	}
	if a.CheckpointDir != "" {
		if fi, err := os.Stat(a.CheckpointDir); err == nil && !fi.IsDir() {
			v.invalid("audit.checkpoint_dir", "%s is not a directory", quoteValue(a.CheckpointDir))
		}
	}
	switch {
	case a.WitnessURL != "":
		v.httpURL("audit.witness_url", a.WitnessURL)
		if a.WitnessKey == "" {
			v.invalid("audit.witness_key", "is required with witness_url: the witness's cosignatures are checked with it")
		} else if _, err := audit.ParseCosignatureVerifier(a.WitnessKey); err != nil {
			v.invalid("audit.witness_key", "%s is not a witness's Ed25519 cosignature key: %v", quoteValue(a.WitnessKey), err)
		}
	case a.WitnessKey != "":
		v.invalid("audit.witness_key", "needs audit.witness_url")
	}
}

// SignalsConfig is the signals section: OpenID Shared Signals (SSF) streams
// whose CAEP events make the host revoke access at once.
type SignalsConfig struct {
	// Receivers are the transmitters the host accepts events from.
	Receivers []SignalReceiverConfig `json:"receivers,omitempty"`
	// Transmitter serves the host's own SSF transmitter (metadata at
	// /.well-known/ssf-configuration), which sends events about the
	// host's agents (quarantine) to subscribed receivers. Stream
	// management needs an access token with the scope ssf:manage.
	Transmitter bool `json:"transmitter"`
}

// SignalReceiverConfig is one transmitter the host receives events from.
type SignalReceiverConfig struct {
	// Name is the path segment of the push endpoint /ssf/push/<name>.
	// Same rules as an agent name; unique.
	Name string `json:"name"`
	// Issuer is the transmitter's issuer: its metadata is at
	// <issuer>/.well-known/ssf-configuration and its SETs must carry it as
	// iss exactly. REQUIRED.
	Issuer string `json:"issuer"`
	// Audience is what the SETs must carry as aud. Default: the host's
	// issuer URL.
	Audience string `json:"audience"`
	// Delivery is push (the transmitter POSTs to /ssf/push/<name>, RFC
	// 8935) or poll (the host polls PollURL, RFC 8936). Default push.
	Delivery string `json:"delivery"`
	// PollURL is the transmitter's poll endpoint of the host's stream.
	// Required with poll, unless Manage.
	PollURL string `json:"poll_url"`
	// Manage makes the host set up its own stream at the transmitter
	// (SSF 1.0 stream management, with the TokenEnv token) when it
	// starts: a push stream to /ssf/push/<name> carrying a fresh secret
	// the host then requires, or a poll stream whose endpoint it learns.
	// An existing stream of the same delivery method is reused.
	Manage bool `json:"manage"`
	// TokenEnv names the environment variable holding the bearer token:
	// the token push requests must carry, or the one the host presents
	// when polling. Optional for push.
	TokenEnv string `json:"token_env"`
	// AllowPrivate lets the host fetch the transmitter's metadata and keys
	// from loopback or private addresses (development only).
	AllowPrivate bool `json:"allow_private"`
}

// Delivery methods of a signal receiver.
const (
	DeliveryPush = "push"
	DeliveryPoll = "poll"
)

func (v *validator) governance() {
	p := v.c.Policy
	if p.Dir != "" {
		if fi, err := os.Stat(p.Dir); err != nil || !fi.IsDir() {
			v.invalid("policy.dir", "%s is not a directory", quoteValue(p.Dir))
		}
		if p.AuthZENEndpoint != "" {
			v.invalid("policy.authzen_endpoint", "set either dir (local Cedar policies) or authzen_endpoint (an external PDP), not both")
		}
	}
	if p.AuthZENEndpoint != "" {
		v.httpURL("policy.authzen_endpoint", p.AuthZENEndpoint)
	}
	if p.ServeAuthZEN && p.Dir == "" {
		v.invalid("policy.serve_authzen", "needs policy.dir: the host serves its own Cedar policies")
	}
	v.audit()
	seen := map[string]int{}
	for i, r := range v.c.Signals.Receivers {
		base := fmt.Sprintf("signals.receivers[%d]", i)
		if v.segmentName(base+".name", "receiver", r.Name) {
			if j, dup := seen[r.Name]; dup {
				v.invalid(base+".name", "receiver %q is already defined at signals.receivers[%d]", r.Name, j)
			}
			seen[r.Name] = i
		}
		if r.Issuer == "" {
			v.invalid(base+".issuer", "is required")
		} else {
			v.httpURL(base+".issuer", r.Issuer)
		}
		switch r.Delivery {
		case "", DeliveryPush:
			if r.PollURL != "" {
				v.invalid(base+".poll_url", "only a poll receiver takes poll_url")
			}
		case DeliveryPoll:
			switch {
			case r.PollURL != "" && r.Manage:
				v.invalid(base+".poll_url", "the host learns the poll endpoint from the stream it manages; remove poll_url or manage")
			case r.PollURL != "":
				v.httpURL(base+".poll_url", r.PollURL)
			case !r.Manage:
				v.invalid(base+".poll_url", "is required with delivery: poll (or set manage: true)")
			}
		default:
			v.invalid(base+".delivery", "%s is not push or poll", quoteValue(r.Delivery))
		}
		if r.Manage && r.TokenEnv == "" {
			v.invalid(base+".token_env", "is required with manage: the host needs a token for the transmitter's stream management")
		}
		if r.TokenEnv != "" && !validEnvName(r.TokenEnv) {
			v.invalid(base+".token_env", "%s is not an environment variable name", quoteValue(r.TokenEnv))
		}
	}
}

// httpURL checks an absolute https URL (http only on a loopback host).
func (v *validator) httpURL(path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil:
		v.invalid(path, "%s is not an absolute URL without user info or fragment", quoteValue(raw))
	case u.Scheme == "http" && !hostIsLoopback(u.Hostname()):
		v.invalid(path, "must be https (http only on a loopback host)")
	case u.Scheme != "http" && u.Scheme != "https":
		v.invalid(path, "must be https")
	}
}
