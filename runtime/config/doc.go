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
// users, clients and resources) and again reports every problem at the line
// of the value it concerns. Errors print as
//
//	FILE:LINE:COL: key.path: message
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
// # Digest
//
// [Config.Digest] is the SHA-256 of the canonical JSON encoding of the
// effective configuration (defaults filled, relative paths resolved). Key
// order, comments and formatting of the file do not change it, so it can be
// presented as attestation evidence of the configuration a host runs with.
package config
