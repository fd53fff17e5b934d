// Package audit is the host's tamper-evident, durable audit log. Every
// mediator decision, action outcome, approval and remediation is one
// [Record]; records are the leaves of a Merkle tree (the transparent log
// of golang.org/x/mod/sumdb/tlog) whose head is periodically signed as a
// checkpoint note (golang.org/x/mod/sumdb/note, Ed25519). Anyone holding
// the verifier key can check the whole log ([Verify]), that a record is in
// a signed tree ([VerifyInclusion]) and that a later tree extends an
// earlier one ([VerifyConsistency]).
//
// The package owns the three store logs below and nothing else; one open
// [Log] must be their only writer. It also replays the log against
// compliance rules ([Check]), rebuilds the execution chain of a transaction
// across agents ([Trace]) and exports it as JSON lines ([Export]).
//
// # Store layout
//
// Three logs of a [store.Log]:
//
//   - "audit": one entry per record, the record's JSON; entry index =
//     record index = Record.Seq. The stored bytes are what is hashed
//     (tlog.RecordHash), so an exported line can be checked as is.
//   - "audit.hashes": one entry per record, entry index = record index:
//     the concatenation of the 32-byte stored hashes tlog.StoredHashes
//     returns for that record (its leaf hash, then the hash of each subtree
//     it completes). The stored hash with tlog index (level L, k) is hash L
//     of the entry of record (k+1)·2^L − 1.
//   - "audit.checkpoints": signed notes whose text is tlog.FormatTree of
//     the tree size and hash, signed by the key named
//     "agenthost-audit/<trust domain>" ([KeyName]). Sizes never decrease.
//
// # Commit order and crash safety
//
// [Log.Append] batches concurrent callers (group commit): the committer
// appends the batch's records to "audit" in one store append and then
// acknowledges the callers: a record is durable when Append returns. The
// hashes, which can always be recomputed from the records, follow in the
// committer's own writes to "audit.hashes": once 512 records' hashes are
// waiting, 20 ms after the last commit, and before any checkpoint, proof,
// tree hash or close. So each commit costs one durable write, and a crash
// can leave records without hashes but never hashes without records;
// [Open] (and the next write, after a failed hashes append) recomputes the
// missing hashes from the records before anything else is written. A
// hashes log longer than the records log is reported as tampering.
// Checkpoints are written after the commit every Config.CheckpointEvery
// records, every Config.CheckpointInterval, on demand ([Log.Checkpoint])
// and on [Log.Close], always after the hashes of the records they cover;
// records after the last checkpoint are reported by [Verify] as uncovered
// ([ErrUncovered]).
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
