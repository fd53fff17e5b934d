// Package config owns agenthost's configuration file: one versioned YAML
// document, its canonical Go form [Config], its defaults and its checks.
//
// # Decoding
//
// [Load] and [Parse] read the YAML into its node tree and walk that tree
// against the [Config] struct by reflection, matching keys to the fields'
// json tags. Decoding is strict: an unknown key, a duplicate key or a value of
// the wrong type (a string where a number is expected, a bad duration such as
// "1 hour", a log level that does not exist) is an [*Error] naming the key
// path and the line of the offending node. Decoding does not stop at the first
// problem; every problem in the file is reported, in file order, as one
// [Errors] value.
//
// The walker is generic: nested structs, strings, bools, integers, floats,
// [time.Duration] (written "90s", "30m", "1h"), slices, maps with string keys,
// pointers, [encoding/json.RawMessage] (a block kept raw for its owner to
// decode) and any type implementing [ScalarUnmarshaler] are supported, so a
// new section is added by adding a field.
//
// # Defaults and validation
//
// Decoding starts from [Default], so omitted keys keep their defaults and a
// value written explicitly is always checked, even when it is zero. After
// decoding, [Config.Validate] runs the semantic checks (trust domain syntax,
// refusal of a non-loopback listener without TLS, issuer URL rules, SVID and
// CA lifetimes, TLS files that exist, the auth section's token lifetimes,
// users, clients and resources, the plugins' sandbox limits, paths and
// ports) and again reports every problem at the line of the value it
// concerns. Errors print as
//
//	FILE:LINE:COL: key.path: message
//
// [LoadWith] and [ParseWith] replace values of the file ([LoadOptions], such
// as the listen address given on the command line) after decoding and
// before defaults are derived and values checked, as if the file held them;
// a problem with such a value has no line.
//
// # Secrets
//
// The auth section configures the embedded OAuth authorization server. No
// secret is ever written in the file: users and clients carry argon2id or
// bcrypt hashes (password_hash, secret_hash), whose syntax is checked, and a
// key that would hold a plaintext secret (a client's secret, a user's
// password, any secret of an agent, which authenticates with its SVIDs) is
// refused with a message saying what to write instead.
//
// # Storage
//
// The storage section picks where state is kept: driver sqlite (the
// default), one file (path, default agenthost.db in the data directory), or
// driver postgres, one PostgreSQL database that every host of a deployment
// shares. The connection string may hold a password, so it is never
// written in the file: dsn_env names the environment variable that holds
// it, or dsn_file a file that holds it (exactly one of the two, and neither
// with sqlite; a key such as dsn or url is refused with a message saying
// so). [StorageConfig.DSN] reads it when the host starts:
//
//	storage:
//	  driver: postgres
//	  dsn_env: AGENTHOST_POSTGRES_DSN    # or dsn_file: /run/secrets/agenthost-dsn
//
// # Remote A2A agents
//
// The a2a section names A2A agents elsewhere ([A2ARemoteConfig]). An agent
// calls one as it calls a hosted agent, by its name, which its call_agents
// must list; a remote's name is unique and no hosted agent's. The host
// fetches the remote's card and verifies its signature with the trust
// bundle of the remote's trust domain (a SPIFFE bundle, from bundle_url or
// bundle_file): a signature with an x5c chain must chain to the bundle's
// X.509 authorities with a leaf of that trust domain, one without must be
// by one of its JWT authorities. require_signed_card (default true when a
// bundle is given) refuses an unsigned card. URLs are https, or http on a
// loopback host when auth.allow_private_fetch is set. No credential of the
// remote is written here (a key such as token is refused): the host gets a
// token for each call at the remote's authorization server, as the task's
// user (acting_as user) or as the calling agent (acting_as agent):
//
//	a2a:
//	  remotes:
//	    - name: partner-research
//	      url: https://agents.partner.example/a2a/research
//	      acting_as: user                  # or agent; default: the task's user when it has one
//	      trust_domain: partner.example
//	      bundle_url: https://agents.partner.example/spiffe/bundle   # or bundle_file
//	agents:
//	  - name: assistant
//	    call_agents: [research, partner-research]
//
// # Plugin sandbox
//
// Every plugin process, agent plugin (agents) or tool plugin (mcp.plugins),
// runs in a sandbox, configured by [SandboxConfig]:
//
//	sandbox:                  # defaults for every plugin
//	  level: strict           # strict (default) | none
//	  memory: 1GiB            # at least 16MiB
//	  processes: 512          # processes and threads, at least 16
//	  cpu: 0                  # cores, at most 1024; 0: not limited
//	  tmp_size: 64MiB         # private /tmp, at least 1MiB
//	agents:
//	  - name: research
//	    path: bin/research
//	    sandbox:              # overrides the keys it sets
//	      read_only_paths: [/srv/corpus, data]
//	      loopback_ports: [11434]
//	      memory: 2GiB
//
// The top-level section holds the level and the limits; read_only_paths and
// loopback_ports, the files a plugin may read and the TCP ports of the
// host's loopback it may connect to, are refused there and set per agent or
// tool plugin. An agent's or tool plugin's sandbox key overrides the
// top-level values key by key; [Config.AgentSandbox] and
// [Config.PluginSandbox] return the effective values, defaults filled. Sizes
// ([ByteSize]) are a number of bytes or a number with a unit: KiB, MiB, GiB
// (powers of 1024) or KB, MB, GB (powers of 1000). Relative read-only paths
// are resolved against the directory of the configuration file and must not
// leave it; "/" is refused. Level none runs the plugin uncontained, for
// debugging only: the host then requires `agenthost up --unsafe-no-sandbox`.
//
// # Digest
//
// [Config.Digest] is the SHA-256 of the canonical JSON encoding of the
// effective configuration (defaults filled, relative paths resolved). Key
// order, comments and formatting of the file do not change it, so it can be
// presented as attestation evidence of the configuration a host runs with.
package config
