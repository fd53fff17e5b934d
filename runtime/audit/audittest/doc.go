// Package audittest holds what tests of the audit log and of hosts that
// publish its checkpoints need beyond the standard library: a
// transparency-log witness ([Witness]) as c2sp.org/tlog-witness specifies
// it, which cosigns checkpoints (c2sp.org/tlog-cosignature, Ed25519
// cosignature/v1) only after checking them.
package audittest
