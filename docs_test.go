package agenthost_test

// These tests keep the guides in docs/ true the way readme_test.go keeps
// README.md: their shell commands are run as written against real hosts,
// with the README's harness, and their tables must not be broken.
// (TestDocsConfig checks their configuration files.) TestDocsLinks checks
// every relative link of README.md and the guides.
//
// How a guide (docs/*.md) marks its code blocks:
//
//   - A fenced block whose info string is exactly "sh" is run, with the
//     README's convention for commands: one command a line (a line ending
//     in \ continues), promised output in "#   " lines under it, "(exit N)"
//     in its comment, NAME=… lines setting a variable for the lines after.
//     Each guide's blocks run in order, in a subtest and a shell session of
//     their own (a variable one guide sets is not set in the next), the
//     guides in the order of their file names, against the same hosts. So
//     a guide relies on nothing another guide did (its commands hold on a
//     quickstart host just started) and leaves host A as it found it (an
//     agent it quarantines, it releases).
//   - A sh block whose first line is "# not run: REASON" is not run. REASON
//     says what its commands need that this test cannot give (a SPIRE
//     server, machines behind a load balancer); it must not be empty, and
//     the test logs it. There is no other way to leave a block out.
//   - yaml, json and text blocks are not run. A block with another info
//     string, or none, fails TestDocsCodeBlocks.
//   - A command that is run calls ./bin/agenthost, as in the README.
//
// The commands run against the docs' deployment, four hosts started from
// the binaries make build leaves in bin/:
//
//   - host A, the quickstart host as the README's test starts it, at the
//     address the guides write 127.0.0.1:8420, federated with host C
//     (federation.trust_domains, with auth.allow_private_fetch so that it
//     fetches C's bundle over plain HTTP on loopback). The commands run in
//     its working directory, laid out as the README's: ./bin/agenthost,
//     examples/… and ./.agenthost resolve as at the repository root;
//   - host B, trust domain b.example, no agents, serving its X.509-SVID
//     (listen.tls.svid) at the address the guides write 127.0.0.1:8443:
//     the other domain's host a guide fetches a bundle from over SVID TLS;
//   - host C, trust domain c.example, no agents, plain HTTP on loopback;
//   - host D, a quickstart host as A is (not federated) whose audit log
//     keeps its checkpoints in a directory (audit.checkpoint_dir, one a
//     second at most): the commands of audit.md run against it, in its own
//     working directory, with the directory that guide writes
//     (/mnt/audit-kept/agenthost) rewritten to D's;
//   - and the two hosts multi-host.md starts itself, on the local
//     PostgreSQL server, in a working directory of their own laid out as
//     A's, with their addresses (127.0.0.1:8421 and :8422) and database
//     (agenthost_try) made free and unique here, in the commands and in a
//     copy of examples/multi-host. Without createdb or a server at
//     127.0.0.1:5432 that guide is skipped, saying so; its database is
//     dropped and its hosts are stopped at its end whatever happened;
//   - for spire.md, a SPIRE server and agent of trust domain a.example
//     (bin/tools/spire, built by make spire-deps; the guide is skipped,
//     saying so, without them): spire-server and spire-agent are first on
//     the PATH, $NODE_ID is the agent's SPIFFE ID, and the host the guide
//     starts runs in a working directory of its own, with its address
//     (127.0.0.1:8430) and the agent's socket
//     (/run/spire/sockets/agent.sock) rewritten as for multi-host.md.
//
// The addresses are free ports, rewritten in the commands and in their
// promised output. The commands start once A is ready and has accepted C's
// bundle, and D has kept a checkpoint.
//
// The commands of a guide run with a configuration directory of their own
// ($XDG_CONFIG_HOME), where agenthost login keeps a sign-in. Those of
// approvals.md have a browser played for the quickstart's demo user alice:
// agenthost login opens testdata/docsbrowser ($BROWSER), which signs in as
// alice and allows; and every approval request waiting for alice (agenthost
// approvals --for alice) is approved on its page, signed in as alice.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/agenthost/agenthost/consent/consenttest"
)

const (
	// docsGlob names the guides.
	docsGlob = "docs/*.md"
	// svidHostAddr is the address the guides write for another domain's
	// host serving its X.509-SVID.
	svidHostAddr = "127.0.0.1:8443"
	// notRunPrefix starts the first line of a sh block that is not run.
	notRunPrefix = "# not run:"
)

// docBlockKinds are the info strings a guide's code block may have.
var docBlockKinds = map[string]bool{"sh": true, "yaml": true, "json": true, "text": true}

// guide is one guide of docs/, parsed as the README is.
type guide struct {
	file string
	doc  *readmeDoc
}

func loadGuides(t *testing.T) []guide {
	t.Helper()
	files, err := filepath.Glob(docsGlob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no guide matches %s", docsGlob)
	}
	var out []guide
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := parseREADME(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, guide{file: f, doc: doc})
	}
	return out
}

// notRun returns the reason a sh block gives for not being run, and
// whether it gives one.
func notRun(b readmeBlock) (string, bool) {
	if len(b.lines) == 0 {
		return "", false
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(b.lines[0].text), notRunPrefix)
	if !ok {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// TestDocsCodeBlocks checks that every code block of the guides is of a
// known kind, that every sh block is run or says why not, and that the
// blocks that are run parse.
func TestDocsCodeBlocks(t *testing.T) {
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	runnable := 0
	for _, g := range loadGuides(t) {
		for _, b := range g.doc.blocks {
			if !docBlockKinds[b.info] {
				t.Errorf("%s:%d: code block with info string %q: use sh (run by TestDocsCommands; its first line %q REASON when it cannot be), yaml, json or text",
					g.file, b.line, b.info, notRunPrefix)
				continue
			}
			if b.info != "sh" {
				continue
			}
			if reason, ok := notRun(b); ok {
				if reason == "" {
					t.Errorf("%s:%d: %q without a reason: say what the commands need that the test cannot give", g.file, b.line, notRunPrefix)
				}
				continue
			}
			cmds, err := b.commands()
			if err != nil {
				t.Errorf("%s:%d: %v", g.file, b.line, err)
				continue
			}
			for _, c := range cmds {
				runnable++
				if c.make != "" && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(c.make)+`:`).Match(makefile) {
					t.Errorf("%s:%d: %q: the Makefile has no target %s", g.file, c.line, c.text, c.make)
				}
				if bareAgenthost.MatchString(c.text) {
					t.Errorf("%s:%d: %q: write ./bin/agenthost: the command is run from the repository root's layout", g.file, c.line, c.text)
				}
			}
		}
	}
	if runnable == 0 {
		t.Fatalf("no guide in %s has a command that is run", docsGlob)
	}
}

func TestDocsNotRunMarker(t *testing.T) {
	tests := []struct {
		first  string
		reason string
		ok     bool
	}{
		{"# not run: needs a SPIRE server", "needs a SPIRE server", true},
		{"  # not run:   needs two machines  ", "needs two machines", true},
		{"# not run:", "", true},
		{"# not run here", "", false},
		{"./bin/agenthost status   # not run: a comment after a command", "", false},
	}
	for _, tt := range tests {
		reason, ok := notRun(readmeBlock{lines: []readmeLine{{1, tt.first}, {2, "echo"}}})
		if reason != tt.reason || ok != tt.ok {
			t.Errorf("notRun(%q) = %q, %v; want %q, %v", tt.first, reason, ok, tt.reason, tt.ok)
		}
	}
}

// TestDocsCommands runs every sh block of the guides that is not marked
// "# not run: …" against the docs' deployment (see the top of this file).
func TestDocsCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the docs' hosts (and SPIRE, and two hosts on PostgreSQL) and runs the guides' commands; run without -short to include it")
	}
	requireBinaries(t)
	requireShellTools(t, "the guides' commands")
	guides := loadGuides(t)
	repo, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	addrA, addrB, addrC := freeLoopbackAddr(t), freeLoopbackAddr(t), freeLoopbackAddr(t)
	browser := buildDocsBrowser(t)
	startSideHost(t, repo, fmt.Sprintf("version: 1\ntrust_domain: c.example\nlisten:\n  address: %s\n", addrC), false)
	startSideHost(t, repo, fmt.Sprintf("version: 1\ntrust_domain: b.example\nlisten:\n  address: %s\n  tls: {svid: true}\n", addrB), true)
	work := readmeWorkDir(t, repo, addrA)
	federateQuickstart(t, work, addrC)
	startReadmeHost(t, work, addrA)
	waitForBundle(t, work, "c.example")
	addrD := freeLoopbackAddr(t)
	workD := readmeWorkDir(t, repo, addrD)
	keptD := t.TempDir()
	keepCheckpoints(t, workD, keptD)
	startReadmeHost(t, workD, addrD)
	waitForCheckpoint(t, keptD)

	rewrite := strings.NewReplacer(quickstartAddr, addrA, svidHostAddr, addrB).Replace
	ran := 0
	for _, g := range guides {
		t.Run(filepath.Base(g.file), func(t *testing.T) {
			sh := newShellSession(work, rewrite)
			// A sign-in is kept under the configuration directory:
			// each guide starts with none, and the user's stays untouched.
			sh.env = append(sh.env, "XDG_CONFIG_HOME="+t.TempDir())
			switch filepath.Base(g.file) {
			case checkpointGuide:
				sh.work = workD
				sh.rewrite = strings.NewReplacer(quickstartAddr, addrD, svidHostAddr, addrB, guideCheckpointDir, keptD).Replace
			case approvalsGuide:
				playAlicesBrowser(t, sh, browser)
			case multiHostGuide:
				sh.work, sh.rewrite = multiHostDeployment(t, repo)
			case spireGuide:
				spireDeploymentFor(t, repo, sh)
			}
			for _, b := range g.doc.blocks {
				if b.info == "sh" {
					sh.runBlock(t, g.file, b)
				}
			}
			ran += sh.ran
		})
	}
	if ran == 0 {
		t.Fatalf("no command of %s was run", docsGlob)
	}
}

// startSideHost starts a host of the docs' deployment from config, in a
// directory of its own, and waits until it serves: until it has written
// its run information (it binds its listener before). Over plain HTTP it
// waits for /readyz to answer 200 as well.
func startSideHost(t *testing.T, repo, config string, tls bool) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(repo, "bin"), filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agenthost.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := regexp.MustCompile(`address: (\S+)`).FindStringSubmatch(config)[1]
	startHost(t, dir, "agenthost.yaml", func() bool {
		if _, err := os.Stat(filepath.Join(dir, ".agenthost", "host.json")); err != nil {
			return false
		}
		if tls {
			return true
		}
		out, err := exec.Command("curl", "-sf", "http://"+addr+"/readyz").Output()
		return err == nil && strings.Contains(string(out), `"ready"`)
	})
}

// federateQuickstart makes the quickstart config in work federate with the
// host serving its bundle on addr, trust domain c.example, fetched over
// plain HTTP on loopback.
func federateQuickstart(t *testing.T, work, addr string) {
	t.Helper()
	path := filepath.Join(work, quickstartConfig)
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	if !strings.Contains(s, "\nauth:\n") || strings.Contains(s, "\nfederation:") || strings.Contains(s, "allow_private_fetch") {
		t.Fatalf("%s changed: the docs' test adds auth.allow_private_fetch and a federation section to it", quickstartConfig)
	}
	s = strings.Replace(s, "\nauth:\n", "\nauth:\n  allow_private_fetch: true\n", 1)
	s += fmt.Sprintf("\nfederation:\n  trust_domains:\n    - name: c.example\n      bundle_endpoint: http://%s/spiffe/bundle\n", addr)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitForBundle waits, up to 30s, until the host on work's data directory
// has recorded that it accepted the bundle of trust domain td (its first
// fetch runs once it has started).
func waitForBundle(t *testing.T, work, td string) {
	t.Helper()
	want := fmt.Sprintf(`"resource":"spiffe://%s"`, td)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, "./bin/agenthost", "audit", "export")
		cmd.Dir = work
		out, err := cmd.Output()
		cancel()
		if err == nil {
			for l := range strings.Lines(string(out)) {
				if strings.Contains(l, want) && strings.Contains(l, `"decision":"allow"`) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host did not accept the bundle of %s within 30s (%v); its audit log:\n%s", td, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const (
	// checkpointGuide is the guide whose commands run against host D,
	// which keeps its checkpoints in a directory (audit.checkpoint_dir);
	// guideCheckpointDir is that directory as the guide writes it.
	checkpointGuide    = "audit.md"
	guideCheckpointDir = "/mnt/audit-kept/agenthost"
	// approvalsGuide is the guide whose commands need a browser in which
	// the quickstart's demo user signs in and approves.
	approvalsGuide = "approvals.md"
	// multiHostGuide is the guide that starts two hosts on one PostgreSQL
	// database; the addresses, database and example directory it writes.
	multiHostGuide    = "multi-host.md"
	multiHostAddr1    = "127.0.0.1:8421"
	multiHostAddr2    = "127.0.0.1:8422"
	multiHostDatabase = "agenthost_try"
	multiHostExample  = "examples/multi-host"
	localPostgres     = "127.0.0.1:5432"
	// spireGuide is the guide that runs a host on SPIRE's identities; the
	// address, agent socket and example directory it writes.
	spireGuide       = "spire.md"
	spireGuideAddr   = "127.0.0.1:8430"
	spireGuideSocket = "/run/spire/sockets/agent.sock"
	spireExample     = "examples/spire"
	spireTrustDomain = "a.example"
	demoUser         = "alice"
	demoPassword     = "alice-demo-password"
)

// keepCheckpoints makes the quickstart config in work keep the audit log's
// checkpoints in dir (audit.checkpoint_dir), one a second at most.
func keepCheckpoints(t *testing.T, work, dir string) {
	t.Helper()
	path := filepath.Join(work, quickstartConfig)
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	if strings.Contains(s, "\naudit:") {
		t.Fatalf("%s changed: the docs' test adds an audit section to it", quickstartConfig)
	}
	s += fmt.Sprintf("\naudit:\n  checkpoint_dir: %s\n  checkpoint_interval: 1s\n", dir)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitForCheckpoint waits, up to 30s, until dir holds a checkpoint.
func waitForCheckpoint(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, _ := filepath.Glob(filepath.Join(dir, "*.checkpoint")); len(m) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host kept no checkpoint in its audit.checkpoint_dir within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// multiHostDeployment readies what the commands of multi-host.md need and
// returns the working directory they run in and their rewrite: free
// addresses for the two hosts, a database name of their own, and a copy of
// examples/multi-host with those addresses. It skips t where the local
// PostgreSQL server or its client programs are missing. At the end of t it
// stops any host the guide left running and drops its database.
func multiHostDeployment(t *testing.T, repo string) (string, func(string) string) {
	t.Helper()
	for _, tool := range []string{"createdb", "dropdb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s runs %s: install PostgreSQL's client programs (e.g. apt-get install postgresql-client) to run it", multiHostGuide, tool)
		}
	}
	if c, err := net.DialTimeout("tcp", localPostgres, 2*time.Second); err != nil {
		t.Skipf("%s needs a PostgreSQL server at %s with trust authentication for the user postgres (%v): start one to run it", multiHostGuide, localPostgres, err)
	} else {
		c.Close()
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	database := "agenthost_docs_" + hex.EncodeToString(suffix)
	rewrite := strings.NewReplacer(multiHostAddr1, freeLoopbackAddr(t), multiHostAddr2, freeLoopbackAddr(t),
		multiHostDatabase, database).Replace
	work := readmeWorkDir(t, repo, freeLoopbackAddr(t))
	copyRewritten(t, filepath.Join(repo, multiHostExample), filepath.Join(work, multiHostExample), rewrite)
	t.Cleanup(func() {
		stopLeftHosts(t, work)
		out, err := exec.Command("dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database).CombinedOutput()
		if err != nil {
			t.Errorf("dropdb %s: %v: %s", database, err, out)
		}
	})
	return work, rewrite
}

// spireDeploymentFor starts the SPIRE server and agent spire.md's commands
// talk to and readies sh for them: the SPIRE programs first on its PATH,
// $NODE_ID, a working directory of its own with a rewritten copy of
// examples/spire, and the rewrite of the host's address and the agent's
// socket. At the end of t it stops the host the guide left running.
func spireDeploymentFor(t *testing.T, repo string, sh *shellSession) {
	t.Helper()
	d := startSPIRE(t, spireTrustDomain)
	sh.env = append(sh.env, "PATH="+d.Bin+string(os.PathListSeparator)+os.Getenv("PATH"), "NODE_ID="+d.NodeID)
	rewrite := strings.NewReplacer(spireGuideAddr, freeLoopbackAddr(t), spireGuideSocket, d.AgentSocket).Replace
	work := readmeWorkDir(t, repo, freeLoopbackAddr(t))
	copyRewritten(t, filepath.Join(repo, spireExample), filepath.Join(work, spireExample), rewrite)
	t.Cleanup(func() { stopLeftHosts(t, work) })
	sh.work, sh.rewrite = work, rewrite
}

// copyRewritten replaces the link to src in the working directory (dst)
// with a copy of its files, each rewritten.
func copyRewritten(t *testing.T, src, dst string, rewrite func(string) string) {
	t.Helper()
	if err := os.Remove(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			t.Fatalf("%s: %s is not a regular file; the docs' test copies only files", src, e.Name())
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), []byte(rewrite(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// stopLeftHosts waits up to 15s for every host still running from a data
// directory directly under work to exit (a guide's last command may have
// just sent it SIGTERM), then stops any left, as a guide that failed
// before stopping its hosts leaves them, with SIGTERM and SIGKILL after
// 15s more.
func stopLeftHosts(t *testing.T, work string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(work, "*", "host.json"))
	hidden, _ := filepath.Glob(filepath.Join(work, ".*", "host.json"))
	for _, f := range append(files, hidden...) {
		dir := filepath.Dir(f)
		var info struct{ PID int }
		if b, err := os.ReadFile(f); err != nil || json.Unmarshal(b, &info) != nil || info.PID <= 0 {
			continue
		}
		running := func() bool {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", info.PID))
			return err == nil && strings.Contains(string(cmdline), "agenthost")
		}
		waitExit := func() bool {
			deadline := time.Now().Add(15 * time.Second)
			for running() {
				if time.Now().After(deadline) {
					return false
				}
				time.Sleep(100 * time.Millisecond)
			}
			return true
		}
		if waitExit() {
			continue
		}
		t.Errorf("the host of %s was still running 15s after the end of the guide: stopping it", dir)
		_ = syscall.Kill(info.PID, syscall.SIGTERM)
		if !waitExit() {
			_ = syscall.Kill(info.PID, syscall.SIGKILL)
		}
	}
}

// buildDocsBrowser builds testdata/docsbrowser, the browser agenthost
// login opens ($BROWSER) in the guides' commands, and returns its path.
func buildDocsBrowser(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "docsbrowser")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/docsbrowser").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./testdata/docsbrowser: %v\n%s", err, out)
	}
	return bin
}

// playAlicesBrowser plays, for the rest of the guide t runs, the browser of
// the quickstart's demo user: agenthost login opens browser, which signs in
// as alice and allows; and whatever approval request waits for alice's
// decision (agenthost approvals --for alice) is approved on its page, as
// alice, once. What goes wrong fails t at its end.
func playAlicesBrowser(t *testing.T, sh *shellSession, browser string) {
	t.Helper()
	browserLog := filepath.Join(t.TempDir(), "browser.log")
	sh.env = append(sh.env, "BROWSER="+browser, "DOCS_BROWSER_USER="+demoUser,
		"DOCS_BROWSER_PASSWORD="+demoPassword, "DOCS_BROWSER_LOG="+browserLog)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []error)
	go func() {
		var errs []error
		defer func() { done <- errs }()
		seen := map[string]bool{}
		for {
			cmd := exec.CommandContext(ctx, "./bin/agenthost", "approvals", "--for", demoUser, "-o", "json")
			cmd.Dir = sh.work
			out, err := cmd.Output()
			if ctx.Err() != nil {
				return
			}
			var list struct {
				Approvals []struct{ ID, URL string }
			}
			if err == nil {
				err = json.Unmarshal(out, &list)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("agenthost approvals --for %s -o json: %v: %s", demoUser, err, out))
				return
			}
			for _, a := range list.Approvals {
				if seen[a.ID] {
					continue
				}
				seen[a.ID] = true
				p, err := consenttest.NewBrowser(demoUser, demoPassword).Approve(ctx, a.URL)
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("approving %s as %s: %v", a.URL, demoUser, err))
				case p.Status != http.StatusOK:
					errs = append(errs, fmt.Errorf("approving %s as %s: status %d: %.300s", a.URL, demoUser, p.Status, p.Body))
				default:
					t.Logf("approved %s as %s", a.URL, demoUser)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		for _, err := range <-done {
			t.Error(err)
		}
		if b, err := os.ReadFile(browserLog); err == nil {
			t.Errorf("the browser agenthost login opened failed:\n%s", b)
		}
	})
}

// TestDocsTables fails on a table of a guide broken by a blank line, as
// TestREADMETables does for the README.
func TestDocsTables(t *testing.T) {
	for _, g := range loadGuides(t) {
		checkTables(t, g.file, g.doc)
	}
}

var (
	// mdLink is an inline link or image, [text](target) or
	// ![alt](target "title"); the text may span lines.
	mdLink = regexp.MustCompile(`\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// mdRefDef is a link reference definition, [label]: target.
	mdRefDef = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	// htmlRef is a link or image written in HTML.
	htmlRef = regexp.MustCompile(`(?i)<(?:a|img)\s[^>]*?(?:href|src)\s*=\s*"([^"]+)"`)
	// urlScheme starts a link to elsewhere: https:, mailto:, …
	urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	// codeSpanText is an inline code span, which holds no link.
	codeSpanText = regexp.MustCompile("`[^`]*`")
)

// TestDocsLinks checks every relative link and image of README.md and the
// guides: its file exists, within the repository, and a #fragment names a
// heading of the Markdown file it points to. Links to other sites are not
// fetched.
func TestDocsLinks(t *testing.T) {
	files, err := filepath.Glob(docsGlob)
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{readmeFile}, files...)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(file string) (map[string]bool, error) {
		if a, ok := anchors[file]; ok {
			return a, nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		doc, err := parseREADME(string(b))
		if err != nil {
			return nil, err
		}
		anchors[file] = headingAnchors(doc)
		return anchors[file], nil
	}
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := parseREADME(string(b))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, l := range docLinks(doc) {
			if urlScheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue
			}
			checked++
			path, fragment, _ := strings.Cut(l.target, "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				if rel := filepath.ToSlash(filepath.Clean(target)); rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(path) {
					t.Errorf("%s:%d: link %q leaves the repository", file, l.line, l.target)
					continue
				}
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s:%d: link %q: no such file (%s)", file, l.line, l.target, filepath.ToSlash(target))
					continue
				}
			}
			if fragment == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				t.Errorf("%s:%d: link %q: %v", file, l.line, l.target, err)
				continue
			}
			if !a[fragment] {
				t.Errorf("%s:%d: link %q: %s has no heading whose anchor is #%s", file, l.line, l.target, filepath.ToSlash(target), fragment)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found in README.md and the guides")
	}
	t.Logf("checked %d relative links", checked)
}

// docLink is a link target and the line of the document it is written on.
type docLink struct {
	line   int
	target string
}

// docLinks returns the link targets of doc outside its code blocks and code
// spans.
func docLinks(doc *readmeDoc) []docLink {
	// The text outside code blocks, with the same line numbers: links
	// may span lines.
	lines := make([]string, len(doc.lines))
	for i, l := range doc.lines {
		if !doc.inBlock[i] {
			lines[i] = l
		}
	}
	text := strings.Join(lines, "\n")
	text = codeSpanText.ReplaceAllStringFunc(text, func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '\n' {
				return r
			}
			return ' '
		}, s)
	})
	lineAt := func(offset int) int { return strings.Count(text[:offset], "\n") + 1 }
	var out []docLink
	for _, re := range []*regexp.Regexp{mdLink, mdRefDef, htmlRef} {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			g := len(m)/2 - 1 // the target is the last group
			out = append(out, docLink{lineAt(m[2*g]), text[m[2*g]:m[2*g+1]]})
		}
	}
	return out
}

// headingAnchors returns the anchors GitHub gives the headings of doc:
// the heading's text in lower case, without punctuation, spaces made
// hyphens, and -1, -2, … after a repeated one.
func headingAnchors(doc *readmeDoc) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for i, l := range doc.lines {
		if doc.inBlock[i] {
			continue
		}
		hashes := len(l) - len(strings.TrimLeft(l, "#"))
		if hashes == 0 || hashes > 6 || !strings.HasPrefix(l[hashes:], " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(l[hashes:])) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

func TestHeadingAnchors(t *testing.T) {
	doc, err := parseREADME("# Policy: Cedar and AuthZEN\n## What each side's audit shows\n## The ratio suite: `make bench`\n" +
		"## Notes\n## Notes\n```sh\n# not a heading\n```\n#not a heading\n### token_exchange → ID-JAG\n")
	if err != nil {
		t.Fatal(err)
	}
	got := headingAnchors(doc)
	for _, want := range []string{"policy-cedar-and-authzen", "what-each-sides-audit-shows", "the-ratio-suite-make-bench",
		"notes", "notes-1", "token_exchange--id-jag"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("anchors = %v, want 6", got)
	}
}

func TestDocLinks(t *testing.T) {
	doc, err := parseREADME("See [a](a.md) and ![an image\nover two lines](img/x.png \"title\").\n" +
		"`[not](a link)` and\n```sh\n[not](either)\n```\n[ref]: ../README.md#quick-start\n<img src=\"y.png\">\n[web](https://example.org)\n")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range docLinks(doc) {
		got = append(got, fmt.Sprintf("%d %s", l.line, l.target))
	}
	want := []string{"1 a.md", "2 img/x.png", "7 ../README.md#quick-start", "8 y.png", "9 https://example.org"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("docLinks = %q, want %q", got, want)
	}
}
