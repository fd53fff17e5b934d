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
// The package owns the store logs below and nothing else. Several open
// logs ([Log]), in several processes, may write them when the store appends
// conditionally and has leases (store.MultiLog and store.Leases: the
// PostgreSQL store several hosts share; see Several writers); on another
// store one open Log must be their only writer. It also keeps checkpoints
// outside the store ([CheckpointDir], [Witness]), replays the log against
// compliance rules
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
// and, for several writers (Several writers), one lease ([store.Leases]),
// [CheckpointLease] ("audit.checkpointer"), whose holder writes the
// checkpoints, and one short-lived record ([store.KV]), [ContentionKey]
// in [ContentionNamespace] ("audit"/"contended"), by which a writer that
// keeps being overtaken asks the others for room.
//
// # Commit order and crash safety
//
// [Log.Append] batches concurrent callers (group commit): the committer
// computes the tree that ends with the batch's records, signs it, and
// stores the records in "audit" and the seal in "audit.seals" in one
// atomic write when the store can append to two logs at once
// (store.MultiLog: SQLite, PostgreSQL and the in-memory store; the
// records must land at the index the seal signs them at, or nothing is
// written), else in two appends, records first; then it acknowledges the
// callers: a record is durable and signed for when Append returns. The
// hashes, which can always be recomputed from the records, follow in the
// committer's own writes to "audit.hashes": once 512 records' hashes are
// waiting, 20 ms after the last commit, and before any checkpoint, proof,
// tree hash or close. A crash can leave records
// without hashes (which [Open] recomputes), and, with a store that cannot
// append to two logs at once, records without a seal: those of the commit
// in progress, whose callers were not acknowledged.
//
// A signature never covers records no writer of the log wrote (a writer
// is a Log with the log's signing key: with several writers, records
// another writer stored under its seal count as written). When [Open]
// finds records after the last signed point (the seal or the latest
// checkpoint), it cannot tell a commit a crash interrupted from records
// someone wrote into the store: it declares them in a record of
// [ActionUnaccounted] (sealed like any other) and [Verify] reports them as
// uncovered ([ErrUncovered]) for good. After a failed append in a running
// log, the records the store turns out to hold are sealed only if they are
// exactly the ones the log tried to write, or under another writer's
// seal.
//
// Checkpoints are written to "audit.checkpoints" after the commit every
// Config.CheckpointEvery records, every Config.CheckpointInterval, on
// demand ([Log.Checkpoint]) and on [Log.Close], always after the hashes of
// the records they cover, by the holder of the checkpoint lease (with one
// writer, always that writer), and each is handed to Config.Publish, which
// keeps it outside the store: a [CheckpointDir], a [Witness]
// (c2sp.org/tlog-witness), or both.
//
// # Several writers
//
// Hosts that share a database (PostgreSQL) each open a [Log] on it, with
// the same signing key, and write one log: one Merkle tree whose records
// the database sequences, one seal per commit, one series of
// checkpoints. No configuration says so: a log finds the others by the
// conflicts of its writes. It takes a store that appends conditionally
// (store.MultiLog, whose appends to several logs are atomic and
// sequenced across processes): every store write whose place matters is
// conditional on that place (LogAppend.IfAt), and nothing is stored where
// a conflict was found.
//
//   - Sequencing. A commit's records and seal are stored in one write, on
//     condition that the first record lands at the log's tree size n0.
//     When another writer committed first, the write stores nothing and
//     fails with store.ErrConflict; the log then catches up: it reads the
//     length of "audit", then the latest seal, reads the records from n0
//     up to the seal's size, checks their seqs, hashes them into its tree
//     and checks the tree hash against the seal. Records under a seal
//     signed with the log's key are thus the log's own, whichever writer
//     stored them: they are never declared unaccounted. The log then
//     numbers its batch after them (Record.Seq) and signs and writes again.
//     Callers are acknowledged only once their records and the seal
//     ending them are stored, at the index Append returns. Because each
//     commit stores its seal with its records, and seals follow one another
//     as their records do, a seal read after the records log's length
//     covers every record a writer committed within that length.
//   - Contention. A writer that commits back to back would starve the
//     others: by the time one has caught up, its next commit is under way.
//     A log overtaken three times on one batch puts the contention record
//     (one second to live); every log looks for it at most every 50 ms
//     while it commits (one read), and while it saw it in the last second
//     pauses after each commit for twice the time the commit took (1 to
//     20 ms). The others' commits land in the pauses, and the records that
//     arrive meanwhile make the next batch larger. A log alone never
//     pauses. A batch overtaken 1000 times fails.
//   - Records without a seal. Records after the latest seal (read after
//     them) were written by no writer of the log: they are not taken; the
//     commit that found them fails with the conflict, as with one writer,
//     and the next commit declares them unaccounted. Writers that find the
//     same records both try to declare them; the first declaration stored
//     wins, and a writer whose declaration is overtaken by a seal covering
//     the records takes that declaration into its tree instead of storing
//     a second one.
//   - Open. The signed points are read after the records log's length; if
//     one covers more records than that (another writer committed in
//     between) the records log must hold them by now, and the tree is
//     loaded up to the signed point. So a log opening on a store another
//     writer is using declares nothing but records no seal covers.
//   - Hashes. Each writer keeps the hashes of every record of its tree,
//     its own and the ones it took from others, and stores them on
//     condition that they land at their records' indexes. When another
//     writer stored hashes there first, the log reads them and requires the
//     same bytes (both computed them from the same records; other bytes
//     are [ErrTampered]), then goes on after them. The hashes log thus
//     holds each record's hashes once, whoever wrote them.
//   - Checkpoints. Only the holder of the checkpoint lease
//     ([CheckpointLease]) stores checkpoints and hands them to
//     Config.Publish. A log takes the lease when a checkpoint is due and
//     the lease is free or expired, renews it with its checkpoints once a
//     third of Config.LeaseTTL passed (default [DefaultLeaseTTL], or three
//     times the interval), and gives it up on Close; a log that found it
//     held asks again after a quarter of the TTL (at most 5 s). On every
//     interval tick the holder first catches up, so it checkpoints the
//     records the others commit. A writer that dies loses the lease when
//     it expires, and the next writer due to checkpoint takes it over.
//     Checkpoints are stored on condition that they follow the latest one
//     the holder knows: if a former holder stored one meanwhile, it is
//     read, and the new one is stored after it only if it covers more
//     records, so sizes never decrease even when two writers believe
//     they hold the lease. [Log.Checkpoint] on a log that does not hold
//     the lease catches up and returns the signed tree of the records so
//     far without storing it: that is the commit seal the store holds for
//     it. With a single writer the lease is always its own (the host names
//     itself by its machine and data directory, Config.Holder, so that it
//     takes its lease back at once after a crash).
//   - Verification. [Verify] reads the latest seal again when records
//     follow the one it read first, and verifies up to the newer seal (a
//     seal read after the records' length covers them), so a log verified
//     while other writers append reports no uncovered tail; a seal that does
//     not move on leaves records after it uncovered, as ever.
//
// A store that cannot append conditionally has one writer: a log on it
// that finds records it did not write fails with [ErrConcurrentWriter] or
// declares them unaccounted, as described above.
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
