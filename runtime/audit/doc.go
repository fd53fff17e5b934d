// Package audit is the host's tamper-evident, durable audit log. Every
// mediator decision, action outcome, approval and remediation is one
// [Record]; records are the leaves of a Merkle tree (the transparent log
// of golang.org/x/mod/sumdb/tlog) whose head is signed as a checkpoint
// (c2sp.org/tlog-checkpoint, a signed note of golang.org/x/mod/sumdb/note,
// Ed25519) whose origin is the log's own name,
// "agenthost-audit/<trust domain>". Anyone holding the verifier key can
// check the whole log ([Verify]), that a record is in a signed tree
// ([VerifyInclusion]), that a later tree extends an earlier one
// ([VerifyConsistency]) and that the log extends a checkpoint kept
// elsewhere ([AgainstCheckpoint]).
//
// The package owns the store logs below and nothing else; one open [Log]
// must be their only writer. It also keeps checkpoints outside the store
// ([CheckpointDir], [Witness]), replays the log against compliance rules
// ([Check]), rebuilds the execution chain of a transaction across agents
// ([Trace]) and exports it as JSON lines ([Export]).
//
// # Trust
//
// Verification trusts the verifier key and nothing in the store. The
// signing key ([Signer]) is kept outside the store it signs, and the
// verifier key is pinned by whoever verifies. A store that is rolled back,
// loses its newest records or is rewritten and signed again with the
// log's key still verifies on its own; a checkpoint kept outside the store
// (a [CheckpointDir] on other storage, a [Witness]'s cosigned copy, a copy
// a third party took) exposes it: the log must hold at least that
// checkpoint's records, and their tree must have its root hash.
//
// # Store layout
//
// Four logs of a [store.Log]:
//
//   - "audit": one entry per record, the record's JSON; entry index =
//     record index = Record.Seq. The stored bytes are what is hashed
//     (tlog.RecordHash), so an exported line can be checked as is.
//   - "audit.hashes": one entry per record, entry index = record index:
//     the concatenation of the 32-byte stored hashes tlog.StoredHashes
//     returns for that record (its leaf hash, then the hash of each subtree
//     it completes). The stored hash with tlog index (level L, k) is hash L
//     of the entry of record (k+1)·2^L − 1.
//   - "audit.checkpoints": signed checkpoints whose text is
//     [FormatCheckpoint] of the tree size and hash, signed by the key named
//     "agenthost-audit/<trust domain>" ([KeyName]). Sizes never decrease.
//     Checkpoints written before the log used its own origin have the text
//     of tlog.FormatTree ("go.sum database tree"); they still verify.
//   - "audit.seals": the commit seals, one per group commit: the signed
//     checkpoint of the tree that ends with the commit's records. Only the
//     latest matters (each supersedes the ones before); it is what covers
//     the records after the latest checkpoint.
//
// # Commit order and crash safety
//
// [Log.Append] batches concurrent callers (group commit): the committer
// computes the tree that ends with the batch's records, signs it, and
// stores the records in "audit" and the seal in "audit.seals" in one
// atomic write when the store can append to two logs at once
// (store.MultiLog: SQLite and the in-memory store; the records must land
// at the index the seal signs them at, or nothing is written), else in two
// appends, records first; then it acknowledges the callers: a record is
// durable and signed for when Append returns. The hashes, which can always
// be recomputed from the records, follow in the committer's own writes to
// "audit.hashes": once 512 records' hashes are waiting, 20 ms after the
// last commit, and before any checkpoint, proof, tree hash or close. A crash can leave records
// without hashes (which [Open] recomputes), and, with a store that cannot
// append to two logs at once, records without a seal: those of the commit
// in progress, whose callers were not acknowledged.
//
// A signature never covers records the log did not write. When [Open]
// finds records after the last signed point (the seal or the latest
// checkpoint), it cannot tell a commit a crash interrupted from records
// someone wrote into the store: it declares them in a record of
// [ActionUnaccounted] (sealed like any other) and [Verify] reports them as
// uncovered ([ErrUncovered]) for good. After a failed append in a running
// log, the records the store turns out to hold are sealed only if they are
// exactly the ones the log tried to write.
//
// Checkpoints are written to "audit.checkpoints" after the commit every
// Config.CheckpointEvery records, every Config.CheckpointInterval, on
// demand ([Log.Checkpoint]) and on [Log.Close], always after the hashes of
// the records they cover, and each is handed to Config.Publish, which
// keeps it outside the store: a [CheckpointDir], a [Witness]
// (c2sp.org/tlog-witness), or both.
//
// # Compliance rules file
//
// [LoadRules] reads a JSON object; every field is optional:
//
//	{
//	  "allow_actions":     ["tool.call"],
//	  "token_actions":     ["tool.call", "agent.call"],
//	  "approval_required": ["payments.transfer", "fs.delete"],
//	  "ignore_quarantine": false
//	}
//
// allow_actions: executed actions (outcome "ok") that need an allow
// decision, on the record or on an earlier record of the same txn, action
// and resource. token_actions: executed actions that need token_sha256 or
// token_jti. A missing list means ["tool.call"], an empty list disables the
// rule. approval_required: resources whose executed calls need an earlier
// "approval" record with decision "allow" in the same txn. Unless
// ignore_quarantine is true, an agent named by a "remediation" record with
// remedy "quarantine" may not be allowed anything until a remediation
// with remedy "release" names it.
package audit
