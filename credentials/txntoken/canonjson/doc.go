// Package canonjson is agenthost's canonical JSON: the one form in which
// a Transaction Token's tctx members and a call's arguments are compared
// and hashed (args_sha256). The host (credentials/txntoken) and the
// plugin SDK (plugins/sdk) both use it, so the digest a tool checks is
// the digest the host minted. It depends on the standard library only.
package canonjson
