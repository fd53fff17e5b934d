// Package attest collects and checks evidence about a workload: an agent
// plugin process that the host is about to give a credential. The evidence
// is recorded with the credential it justified (DESIGN.md §5, "Agent
// identity"), so it is a plain JSON-tagged value with stable field names.
//
// # Evidence
//
// [Evidence] names the running executable (its path, the SHA-256 of its
// content, its size and modification time), the process (pid, effective uid
// and gid), the digest of the configuration the host gave the plugin and
// the collection time. [Evidence.Validate] checks a stored value.
//
// # Collecting
//
// [Collector.Collect] (or [Collect] with the default configuration) reads
// the proc filesystem on Linux. The executable is hashed through
// /proc/<pid>/exe, so the image the process is running is what is hashed,
// even if the file on disk was replaced or removed after launch. The
// process is pinned by a directory handle on /proc/<pid> for the whole
// collection; if it exits, executes another program or changes its uid or
// gid before collection ends, Collect fails with [ErrProcessExited] or
// [ErrProcessChanged] rather than return evidence about a process that is
// no longer there. When the caller knows the expected digest (from
// [HashFile] of the binary before launch), a different running image is
// reported as [ErrDigestMismatch]. On other systems Collect returns
// [ErrUnsupported].
//
// # Lineage
//
// [Collector.DescendsFrom] (or [DescendsFrom]) tells whether a process is
// one of a set of processes or a descendant of one, by following the parent
// of each process in /proc/<pid>/stat. The host uses it to admit to a
// plugin's socket the process it started for the plugin and that process's
// children, and to keep them away from its own sockets. A pid that does not
// exist, or a chain that breaks during the walk, is an error, never a "no".
//
// # Checking
//
// [Verify] checks evidence against a [Policy] (expected executable digest,
// allowed uids, expected configuration digest) and names every check that
// failed.
package attest
