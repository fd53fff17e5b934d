// Package asstore adapts the host's storage backend ([store.KV]) to the
// state interface of the embedded authorization server
// ([authserver.Store]), so the authorization server keeps its clients,
// codes, refresh-token families, replay cache and keys in the same SQLite
// or PostgreSQL database as the rest of the host.
package asstore
