package cli

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// adminClient returns a client of the host running on the data directory,
// or the error saying none is.
func adminClient(g *globalFlags) (*localapi.Client, error) {
	if _, err := host.ReadRunInfo(g.dataDir); err != nil {
		return nil, err
	}
	return localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)), nil
}

// exactArgs is cobra.ExactArgs with a usage error naming what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}

func newAuditCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, read, trace and check the running host's audit log",
		Long: `audit works on the tamper-evident audit log of the host running on --data-dir:
every decision and action of its agents is a record, the records are the leaves
of a Merkle tree and the tree head is regularly signed as a checkpoint.

The signed checkpoint and the verifier key ("agenthost audit checkpoint") let a
third party check later that a record is in the log ("agenthost audit prove
--index"), that the log only grew ("agenthost audit prove --consistency") and
that it was neither rolled back nor rewritten ("agenthost audit verify
--checkpoint FILE --key KEY").

"agenthost audit keygen" makes a checkpoint signing key, for hosts that share
one audit log (audit.signing_key_env).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
			}
			return usageError{fmt.Errorf("%s needs a subcommand (see %s --help)", cmd.CommandPath(), cmd.CommandPath())}
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(
		newAuditVerifyCommand(g),
		newAuditTailCommand(g),
		newAuditExportCommand(g),
		newAuditTraceCommand(g),
		newAuditCheckCommand(g),
		newAuditCheckpointCommand(g),
		newAuditProveCommand(g),
		newAuditKeygenCommand(g),
	)
	return cmd
}

func newAuditKeygenCommand(_ *globalFlags) *cobra.Command {
	var trustDomain string
	cmd := &cobra.Command{
		Use:   "keygen --trust-domain TD",
		Short: "Print a new audit checkpoint signing key for a trust domain",
		Long: `keygen makes a new Ed25519 key that signs the audit log's checkpoints for the
trust domain TD (the config's trust_domain). It prints the key on stdout, one
line and nothing else, and its verifier key on stderr as the line
"verifier key: KEY". It needs no running host.

The key is for audit.signing_key_env: hosts that share one audit log (hosts on
one PostgreSQL database, see docs/multi-host.md) must all sign with one key,
which each host reads from the environment variable audit.signing_key_env
names, for example:

  AGENTHOST_AUDIT_KEY=$(agenthost audit keygen --trust-domain agenthost.local)

Keep the key secret (in your secret store, not in the config, the data
directory or version control): whoever holds it can sign checkpoints of a
rewritten log. The verifier key is public; pin it to check the log
("agenthost audit verify --key KEY", audit.verifier_key).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTrustDomain(trustDomain); err != nil {
				return usageError{fmt.Errorf("%s: --trust-domain: %w", cmd.CommandPath(), err)}
			}
			skey, vkey, err := audit.GenerateKey(rand.Reader, trustDomain)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), skey)
			fmt.Fprintf(cmd.ErrOrStderr(), "verifier key: %s\n", vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&trustDomain, "trust-domain", "", "`TD`, the trust domain the key signs the audit log of (the config's trust_domain)")
	return cmd
}

// checkTrustDomain checks td is a trust domain name as the config's
// trust_domain takes it (SPIFFE-ID §2.1): not empty, no scheme, lowercase
// a-z, 0-9, '.', '-' and '_', at most 255 bytes.
func checkTrustDomain(td string) error {
	switch {
	case td == "":
		return fmt.Errorf("the trust domain is required; give the config's trust_domain, for example %s", config.DefaultTrustDomain)
	case strings.Contains(td, ":/"):
		return fmt.Errorf("%q is a URI; give the bare trust domain name, such as %s", td, config.DefaultTrustDomain)
	}
	if err := credentials.ValidateTrustDomain(td); err != nil {
		return fmt.Errorf("%q is not a trust domain name: %w", td, err)
	}
	return nil
}

func newAuditVerifyCommand(g *globalFlags) *cobra.Command {
	var (
		storePath, dsnEnv, key, checkpointPath string
		output                                 *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "verify [--key KEY] [--checkpoint FILE|DIR]",
		Short: "Checkpoint the audit log, then verify every record and checkpoint",
		Long: `verify has the host sign a checkpoint of its audit log, then recompute the hash
of every record and check every signed checkpoint against the records. It
prints what it verified and the checkpoint, and exits 0. If the log was altered
it names the first record or checkpoint at fault on stderr and exits 1.

--key KEY pins the verifier key (as the host prints it at start and "agenthost
audit checkpoint" prints it): signatures are checked with KEY and never with the
key the host or its data directory holds. Without --key the host's own key is
used, which proves nothing against whoever controls the host's files; verify
says so.

--checkpoint FILE checks the log against a checkpoint kept outside the host (a
file as "agenthost audit checkpoint" prints it, or the audit.checkpoint_dir
directory, whose newest checkpoint is used): its signature must verify, the log
must hold at least its records, and a consistency proof from it to the current
tree must verify. A log rolled back, stripped of its newest records or rewritten
(even signed again with the host's key) fails.

With no host running on --data-dir, verify reads the stored log directly
(holding the data directory so that no host starts meanwhile): the SQLite file
(--store), or with --dsn-env NAME the PostgreSQL database whose DSN the
environment variable NAME holds, which other hosts may be writing meanwhile
(the log is verified up to its latest seal). Records no signature vouches for
(after the last signed point, or found in the store by the host at start and
declared unaccounted) count as a failure.

On a terminal a live line shows that the verification is under way (a large
log takes a while). -o json prints one JSON object on stdout instead of the
lines (see the README, Commands), whether the log verified or not; the exit
status is the same.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if key != "" {
				if _, err := audit.ParseVerifier(key); err != nil {
					return usageError{fmt.Errorf("%s: --key: %w", cmd.CommandPath(), err)}
				}
			}
			var kept []byte
			if checkpointPath != "" {
				var err error
				if kept, err = audit.LoadCheckpoint(checkpointPath); err != nil {
					return usageError{fmt.Errorf("%s: --checkpoint: %w", cmd.CommandPath(), err)}
				}
			}
			var res localapi.AuditVerifyResult
			c, err := adminClient(g)
			online := err == nil
			if err != nil && !errors.Is(err, host.ErrNotRunning) {
				return err
			}
			// No host: verify the stored log directly (holding the data
			// directory so that none starts meanwhile).
			offline := host.AuditVerifyOptions{DataDir: g.dataDir, StorePath: storePath, VerifierKey: key, Checkpoint: kept}
			if !online && dsnEnv != "" {
				if offline.DSN = strings.TrimSpace(os.Getenv(dsnEnv)); offline.DSN == "" {
					return usageError{fmt.Errorf("%s: --dsn-env: environment variable %s is not set", cmd.CommandPath(), dsnEnv)}
				}
			}
			p := newProgress(stderr, g.isTerminal(stderr) && !output.isJSON(), "verifying the audit log")
			switch {
			case !online:
				res, err = host.VerifyAuditOffline(ctx, offline)
			case key != "" || kept != nil:
				res, err = c.AuditVerifyPinned(ctx, localapi.AuditVerifyRequest{VerifierKey: key, Checkpoint: string(kept)})
			default:
				res, err = c.AuditVerify(ctx)
			}
			p.stop()
			if err != nil {
				return err
			}
			if !online {
				fmt.Fprintln(stderr, "no host is running: verifying the stored log as it is")
			}
			rep := res.Report
			v := newVerifyJSON(rep, !online, key)
			// fail reports the first failure: on stderr, and in the JSON
			// object when that is the output.
			fail := func(msg string) error {
				fmt.Fprintln(stderr, msg)
				if output.isJSON() {
					v.Verified, v.Failure = false, msg
					if err := writeJSON(stdout, v); err != nil {
						return err
					}
				}
				return silentExit{exitFailure}
			}
			vkey := key
			if vkey == "" {
				vkey = res.VerifierKey
				v.VerifierKey = vkey
				fmt.Fprintf(stderr, "verifier key %s: the host's own, as the host gives it; pin it with --key to verify without trusting the host\n", vkey)
			} else if res.VerifierKey != key {
				return fail(fmt.Sprintf("audit log FAILED verification: the host verified with key %s, not the pinned one", res.VerifierKey))
			}
			if p := rep.Problem; p != nil {
				return fail(verifyFailure(p))
			}
			var lines []string
			lines = append(lines, fmt.Sprintf("verified %s and %s; tree hash %s", plural(rep.Records, "record"), plural(rep.Checkpoints, "checkpoint"), rep.TreeHash))
			if res.Checkpoint != "" {
				tree, line, err := describeCheckpoint([]byte(res.Checkpoint), vkey, rep)
				if err != nil {
					return fail(fmt.Sprintf("audit log FAILED verification: %v", err))
				}
				v.Checkpoint = &tree
				lines = append(lines, line)
			}
			if kept != nil {
				old, line, err := checkKept(cmd, c, online, kept, []byte(res.Checkpoint), vkey, rep)
				if err != nil {
					return fail(fmt.Sprintf("audit log FAILED verification against the kept checkpoint: %v", err))
				}
				v.Kept = &old
				lines = append(lines, line)
			}
			v.Verified = true
			if output.isJSON() {
				return writeJSON(stdout, v)
			}
			for _, l := range lines {
				fmt.Fprintln(stdout, l)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&storePath, "store", "", "with no host running: the SQLite store file (default: agenthost.db in --data-dir)")
	cmd.Flags().StringVar(&dsnEnv, "dsn-env", "", "with no host running here: the environment variable holding the PostgreSQL DSN of the store (storage driver postgres; other hosts may be running)")
	cmd.Flags().StringVar(&key, "key", "", "the verifier key to check signatures with, pinned (default: the host's own)")
	cmd.Flags().StringVar(&checkpointPath, "checkpoint", "", "a checkpoint kept outside the host (a file, or a checkpoint directory's newest) the log must extend")
	output = addOutputFlag(cmd)
	return cmd
}

// verifyJSON is what audit verify -o json prints.
type verifyJSON struct {
	// Verified: the whole log verified; Failure is otherwise the first
	// failure, as the text says it on stderr.
	Verified bool   `json:"verified"`
	Failure  string `json:"failure"`
	// Offline: no host ran on the data directory; the stored log was
	// read directly.
	Offline bool `json:"offline"`
	// VerifierKey checked the signatures; KeyPinned says whether it was
	// given with --key (else it is the host's own).
	VerifierKey string `json:"verifier_key"`
	KeyPinned   bool   `json:"key_pinned"`
	// Size is the number of records in the log, Records how many were
	// verified, Checkpoints how many checkpoints, Covered how many records
	// a verified signature covers; TreeHash is the hash of the tree of
	// the verified records.
	Size        int64  `json:"size"`
	Records     int64  `json:"records"`
	Checkpoints int64  `json:"checkpoints"`
	Covered     int64  `json:"covered"`
	TreeHash    string `json:"tree_hash"`
	// Uncovered are the records no signature vouches for.
	Uncovered []audit.Range `json:"uncovered"`
	// Problem is the first inconsistency in the log, null if none.
	Problem *problemJSON `json:"problem"`
	// Checkpoint is the checkpoint taken for the verification, and Kept
	// the one --checkpoint gave, null when there is none.
	Checkpoint *treeJSON `json:"checkpoint"`
	Kept       *treeJSON `json:"kept"`
}

// problemJSON is the first inconsistency verification found.
type problemJSON struct {
	// Kind is record, checkpoint, seal, kept checkpoint or uncovered.
	Kind   string `json:"kind"`
	Index  int64  `json:"index"`
	Reason string `json:"reason"`
}

// treeJSON is a checkpoint: the size of the tree it signs and its hash.
type treeJSON struct {
	Size     int64  `json:"size"`
	TreeHash string `json:"tree_hash"`
}

func newVerifyJSON(rep audit.Report, offline bool, key string) verifyJSON {
	v := verifyJSON{Offline: offline, VerifierKey: key, KeyPinned: key != "", Size: rep.Size, Records: rep.Records,
		Checkpoints: rep.Checkpoints, Covered: rep.Covered, TreeHash: rep.TreeHash.String(), Uncovered: rep.Uncovered}
	if v.Uncovered == nil {
		v.Uncovered = []audit.Range{}
	}
	if p := rep.Problem; p != nil {
		v.Problem = &problemJSON{Kind: string(p.Kind), Index: p.Index, Reason: p.Reason}
	}
	return v
}

// checkKept checks that the log extends the kept checkpoint, trusting
// only what vkey signs: with a running host, by a consistency proof from
// the kept checkpoint to the checkpoint the host just signed; without one,
// the verification recomputed the kept tree from the records themselves.
func checkKept(cmd *cobra.Command, c *localapi.Client, online bool, kept, current []byte, vkey string, rep audit.Report) (treeJSON, string, error) {
	var none treeJSON
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		return none, "", err
	}
	old, err := audit.OpenCheckpoint(kept, v)
	if err != nil {
		return none, "", fmt.Errorf("the kept checkpoint is not signed by key %s: %w", vkey, err)
	}
	if online {
		cur, err := audit.OpenCheckpoint(current, v)
		if err != nil {
			return none, "", fmt.Errorf("the host's checkpoint: %w", err)
		}
		if old.N > cur.N {
			return none, "", fmt.Errorf("the kept checkpoint covers %d records but the host's log has %d: it was rolled back", old.N, cur.N)
		}
		var proof []string
		if old.N > 0 {
			if proof, err = c.AuditConsistencyProof(cmd.Context(), old.N, cur.N); err != nil {
				return none, "", err
			}
		}
		if err := audit.VerifyConsistencyText(kept, current, proof, v); err != nil {
			return none, "", fmt.Errorf("no consistency from the kept %d records to the host's %d: the log was rewritten: %w", old.N, cur.N, err)
		}
	} else if rep.Kept != old.N {
		return none, "", fmt.Errorf("the verification did not reach the kept checkpoint's %d records", old.N)
	}
	return treeJSON{Size: old.N, TreeHash: old.Hash.String()}, fmt.Sprintf("consistent with the kept checkpoint of %s (tree hash %s)", plural(old.N, "record"), old.Hash), nil
}

// plural returns "1 record", "2 records".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// verifyFailure describes the first problem verification found.
func verifyFailure(p *audit.Problem) string {
	switch p.Kind {
	case audit.ProblemCheckpoint:
		return fmt.Sprintf("audit log FAILED verification at checkpoint %d: %s", p.Index, clean(p.Reason))
	case audit.ProblemSeal:
		return fmt.Sprintf("audit log FAILED verification at its latest commit seal: %s", clean(p.Reason))
	case audit.ProblemKept:
		return fmt.Sprintf("audit log FAILED verification against the kept checkpoint of %d records: %s", p.Index, clean(p.Reason))
	case audit.ProblemUncovered:
		return fmt.Sprintf("audit log FAILED verification: records not vouched for from record %d: %s", p.Index, clean(p.Reason))
	}
	return fmt.Sprintf("audit log FAILED verification at record %d: %s", p.Index, clean(p.Reason))
}

// describeCheckpoint checks the signature of a checkpoint with the verifier
// key and describes it. A checkpoint of exactly the records verified must
// state their tree hash.
func describeCheckpoint(checkpoint []byte, verifierKey string, rep audit.Report) (treeJSON, string, error) {
	var none treeJSON
	v, err := audit.ParseVerifier(verifierKey)
	if err != nil {
		return none, "", fmt.Errorf("the host's verifier key: %w", err)
	}
	tree, err := audit.OpenCheckpoint(checkpoint, v)
	if err != nil {
		return none, "", fmt.Errorf("the host's checkpoint: %w", err)
	}
	if tree.N == rep.Records && tree.Hash != rep.TreeHash {
		return none, "", fmt.Errorf("the checkpoint of %d records states tree hash %s, the records hash to %s", tree.N, tree.Hash, rep.TreeHash)
	}
	return treeJSON{Size: tree.N, TreeHash: tree.Hash.String()}, fmt.Sprintf("checkpoint: %d records, tree hash %s, signed by %s", tree.N, tree.Hash, v.Name()), nil
}

func newAuditTailCommand(g *globalFlags) *cobra.Command {
	var (
		n      int
		output *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "tail [-n N]",
		Short: "Print the last records of the audit log",
		Long: `tail prints the last N records of the audit log, oldest first, one per line:
index, time (RFC 3339, UTC), agent, subject, action, resource, decision,
outcome and reason. Empty fields print as "-".

-o json prints one JSON object instead, {"records": [{"index": I, "record":
{...}}, ...]}, each record exactly as "agenthost audit export" writes it.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > localapi.MaxRecordsLimit {
				return usageError{fmt.Errorf("%s: -n must be between 1 and %d, got %d", cmd.CommandPath(), localapi.MaxRecordsLimit, n)}
			}
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			es, err := c.AuditRecords(cmd.Context(), -int64(n), n)
			if err != nil {
				return err
			}
			if output.isJSON() {
				return writeJSON(cmd.OutOrStdout(), recordsJSON{Records: toEntriesJSON(es)})
			}
			return writeRecords(cmd.OutOrStdout(), es)
		},
	}
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "number of records to print")
	output = addOutputFlag(cmd)
	return cmd
}

// recordsJSON is what audit tail -o json prints.
type recordsJSON struct {
	Records []entryJSON `json:"records"`
}

// entryJSON is one record of the audit log and its index, the record as
// audit export writes it.
type entryJSON struct {
	Index  int64        `json:"index"`
	Record audit.Record `json:"record"`
}

func toEntriesJSON(es []audit.Entry) []entryJSON {
	out := make([]entryJSON, 0, len(es))
	for _, e := range es {
		out = append(out, entryJSON{Index: e.Index, Record: e.Record})
	}
	return out
}

// writeRecords prints records one per line, in aligned columns.
func writeRecords(w io.Writer, es []audit.Entry) error {
	if len(es) == 0 {
		_, err := fmt.Fprintln(w, "the audit log is empty")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// TXN is what `agenthost audit trace` takes.
	fmt.Fprintln(tw, "INDEX\tTIME\tTXN\tAGENT\tSUBJECT\tACTION\tRESOURCE\tDECISION\tOUTCOME\tREASON")
	for _, e := range es {
		r := &e.Record
		reason := r.Reason
		if reason == "" && r.Error != "" {
			reason = "error: " + r.Error
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Index, r.Time.UTC().Format(time.RFC3339), field(r.Txn),
			field(r.Agent), field(r.Subject), field(r.Action), field(r.Resource), field(r.Decision), field(r.Outcome), field(reason))
	}
	return tw.Flush()
}

// field prints a record field on one line: "-" when empty, control
// characters escaped.
func field(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// clean escapes control and other non-printable characters (newlines and
// tabs included) and bytes that are not UTF-8, so that text from records
// cannot break lines or columns or drive the terminal.
func clean(s string) string {
	return escapeWith(s, func(r rune) bool { return !unicode.IsPrint(r) }, false)
}

// cleanLines is clean for multi-line text: newlines are kept.
func cleanLines(s string) string {
	return escapeWith(s, func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }, false)
}

func newAuditExportCommand(g *globalFlags) *cobra.Command {
	var from int64
	cmd := &cobra.Command{
		Use:   "export [--from N]",
		Short: "Write the audit log's records as JSON lines to stdout",
		Long: `export writes the records from index --from on to stdout, one JSON object per
line, exactly as stored and hashed: a line's record hash (tlog.RecordHash) is the
record's leaf in the signed tree, so an exported record can be checked against a
checkpoint. It exits 1 if the export could not be completed.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from < 0 {
				return usageError{fmt.Errorf("%s: --from must not be negative, got %d", cmd.CommandPath(), from)}
			}
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			_, err = c.AuditExport(cmd.Context(), cmd.OutOrStdout(), from)
			return err
		},
	}
	cmd.Flags().Int64Var(&from, "from", 0, "index of the first record to export")
	return cmd
}

func newAuditTraceCommand(g *globalFlags) *cobra.Command {
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "trace TXN",
		Short: "Print the execution chain of a transaction or task across agents",
		Long: `trace rebuilds the execution chain TXN belongs to (a transaction or task id):
one node per task (and per transaction of no task, such as a hosted MCP
server's tools/call), each with its records, a delegated task under the task
that delegated it, as an indented tree. A transaction is what one request
began: the user's or operator's task (its id is on the "txn" line agenthost
run prints) and every task it delegated share it, so tracing it shows the
user's request, the agents and their tool calls at once; tracing a task
climbs to its topmost ancestor and shows the same tree.

-o json prints the tree as one JSON object instead: {"txn", "parent",
"agent", "task", "records": [{"index", "record"}], "children": [nodes]}.`,
		Args: exactArgs(1, "one TXN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			tree, text, err := c.AuditTrace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output.isJSON() {
				return writeJSON(cmd.OutOrStdout(), toTraceJSON(tree))
			}
			_, err = io.WriteString(cmd.OutOrStdout(), cleanLines(text))
			return err
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}

// traceJSON is one node of audit trace -o json: a task (or the records of
// a transaction that name no task), its records, and the nodes it caused.
type traceJSON struct {
	Txn      string      `json:"txn"`
	Parent   string      `json:"parent"`
	Agent    string      `json:"agent"`
	Task     string      `json:"task"`
	Records  []entryJSON `json:"records"`
	Children []traceJSON `json:"children"`
}

func toTraceJSON(n *audit.TraceNode) traceJSON {
	if n == nil {
		return traceJSON{Records: []entryJSON{}, Children: []traceJSON{}}
	}
	out := traceJSON{Txn: n.Txn, Parent: n.Parent, Agent: n.Agent, Task: n.Task, Records: toEntriesJSON(n.Records),
		Children: make([]traceJSON, 0, len(n.Children))}
	for _, c := range n.Children {
		out.Children = append(out.Children, toTraceJSON(c))
	}
	return out
}

func newAuditCheckCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "check RULESFILE",
		Short: "Replay the audit log against compliance rules",
		Long: `check replays the whole audit log against the compliance rules of RULESFILE, a
JSON object (every field optional):

  {"allow_actions": ["tool.call"], "token_actions": ["tool.call"],
   "approval_required": ["payments/pay"], "ignore_quarantine": false}

It prints each violation as "record N: RULE: DETAIL" and exits 1 if there is
any; otherwise it prints "no violations".`,
		Args: exactArgs(1, "one RULESFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{fmt.Errorf("rules file: %w", err)}
			}
			if _, err := audit.ParseRules(data); err != nil {
				return usageError{fmt.Errorf("rules file %s: %w", args[0], err)}
			}
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			vs, err := c.AuditCheck(cmd.Context(), data)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(vs) == 0 {
				fmt.Fprintln(out, "no violations")
				return nil
			}
			for _, v := range vs {
				fmt.Fprintln(out, clean(v.String()))
			}
			fmt.Fprintln(cmd.ErrOrStderr(), plural(int64(len(vs)), "violation"))
			return silentExit{exitFailure}
		},
	}
}

func newAuditCheckpointCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Print the latest signed checkpoint and the verifier key",
		Long: `checkpoint prints the latest signed checkpoint of the audit log (a signed note,
c2sp.org/tlog-checkpoint, stating the log's name, the number of records and the
tree hash) on stdout, and the line "verifier key: KEY" on stderr. Keep both
outside the host (agenthost audit checkpoint > FILE): with them anyone can check
later that the log only grew ("agenthost audit verify --checkpoint FILE --key
KEY") and that a record is in it ("agenthost audit prove").`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			cp, vkey, err := c.AuditCheckpoint(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := cmd.OutOrStdout().Write(cp); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "verifier key: %s\n", vkey)
			return nil
		},
	}
}

func newAuditProveCommand(g *globalFlags) *cobra.Command {
	var (
		index, size int64
		consistency string
	)
	cmd := &cobra.Command{
		Use:   "prove --index I [--size S] | --consistency OLD:NEW",
		Short: "Print an inclusion or consistency proof of the audit log",
		Long: `prove prints the hashes of a Merkle proof, one per line, in proof order.

--index I proves that record I is in the tree of the first S records (--size;
by default the size of the latest signed checkpoint). Check it with the record
as exported, the checkpoint of that size and the verifier key.

--consistency OLD:NEW proves that the tree of NEW records extends the tree of
OLD records: the log only grew between two checkpoints of those sizes.

Which proof and tree size it is goes to stderr; stdout holds only the hashes.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("%s takes no arguments, got %d", cmd.CommandPath(), len(args))}
			}
			fl := cmd.Flags()
			switch {
			case fl.Changed("index") == (consistency != ""):
				return usageError{fmt.Errorf("%s needs either --index or --consistency", cmd.CommandPath())}
			case fl.Changed("size") && consistency != "":
				return usageError{fmt.Errorf("%s: --size goes with --index, not --consistency", cmd.CommandPath())}
			case fl.Changed("index") && index < 0:
				return usageError{fmt.Errorf("%s: --index must not be negative, got %d", cmd.CommandPath(), index)}
			case fl.Changed("size") && index >= size:
				return usageError{fmt.Errorf("%s: --index (%d) must be less than --size (%d)", cmd.CommandPath(), index, size)}
			}
			if consistency != "" {
				if _, _, err := parseConsistency(consistency); err != nil {
					return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var hashes []string
			if consistency != "" {
				oldSize, newSize, _ := parseConsistency(consistency)
				if hashes, err = c.AuditConsistencyProof(ctx, oldSize, newSize); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "consistency of the tree of %d records with the tree of %d records: %d hashes\n", oldSize, newSize, len(hashes))
			} else {
				if !cmd.Flags().Changed("size") {
					if size, err = checkpointSize(cmd, c); err != nil {
						return err
					}
					if index >= size {
						return fmt.Errorf("record %d is not covered by the latest checkpoint (%d records)", index, size)
					}
				}
				if hashes, err = c.AuditInclusionProof(ctx, index, size); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "inclusion of record %d in the tree of %d records: %d hashes\n", index, size, len(hashes))
			}
			out := cmd.OutOrStdout()
			for _, h := range hashes {
				fmt.Fprintln(out, h)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&index, "index", 0, "index of the record to prove")
	cmd.Flags().Int64Var(&size, "size", 0, "size of the tree the record is proved in (default: the latest checkpoint's)")
	cmd.Flags().StringVar(&consistency, "consistency", "", "OLD:NEW, the two tree sizes to prove consistent")
	return cmd
}

// checkpointSize returns the tree size of the host's latest checkpoint,
// after checking its signature.
func checkpointSize(cmd *cobra.Command, c *localapi.Client) (int64, error) {
	cp, vkey, err := c.AuditCheckpoint(cmd.Context())
	if err != nil {
		return 0, err
	}
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		return 0, fmt.Errorf("the host's verifier key: %w", err)
	}
	tree, err := audit.OpenCheckpoint(cp, v)
	if err != nil {
		return 0, fmt.Errorf("the host's checkpoint: %w", err)
	}
	return tree.N, nil
}

// parseConsistency parses OLD:NEW, two tree sizes with 1 <= OLD <= NEW.
func parseConsistency(s string) (oldSize, newSize int64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		oldSize, err = strconv.ParseInt(a, 10, 64)
		if err == nil {
			newSize, err = strconv.ParseInt(b, 10, 64)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("--consistency wants OLD:NEW, two tree sizes, got %q", s)
	}
	if oldSize < 1 || newSize < oldSize {
		return 0, 0, fmt.Errorf("--consistency %s: the sizes must satisfy 1 <= OLD <= NEW", s)
	}
	return oldSize, newSize, nil
}
