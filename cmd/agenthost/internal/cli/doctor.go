package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/a2a/a2aremote"
	"github.com/agenthost/agenthost/credentials/federation"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	llmanthropic "github.com/agenthost/agenthost/llm/anthropic"
	llmopenai "github.com/agenthost/agenthost/llm/openai"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/host"
)

// checkStatus is the verdict of one doctor check.
type checkStatus string

const (
	checkOK   checkStatus = "ok"
	checkWarn checkStatus = "warn"
	// checkFail makes doctor exit 1.
	checkFail checkStatus = "FAIL"
)

// Clock skew bounds. The host and the servers it talks to accept tokens,
// assertions and proofs up to 30 seconds off (a JWT's iat, nbf and exp, a
// DPoP proof's iat, a client assertion's exp): a larger skew makes them
// refuse what this host sends or accept.
const (
	skewWarn = 10 * time.Second
	skewFail = 30 * time.Second
)

// probeSandbox finds out which protections a plugin sandbox gives here;
// tests replace it.
var probeSandbox = sandbox.Probe

// checkResult is one line of doctor's report.
type checkResult struct {
	// Check names what was checked: "config", "data directory", "key
	// files", "listen", "sandbox", "reach …", "clock".
	Check   string      `json:"check"`
	Status  checkStatus `json:"status"`
	Message string      `json:"message"`
	// Hint says what to do about a warning or failure ("" for ok).
	Hint string `json:"hint"`
}

// doctorJSON is what doctor -o json prints.
type doctorJSON struct {
	Checks   []checkResult `json:"checks"`
	Failed   int           `json:"failed"`
	Warnings int           `json:"warnings"`
}

func newDoctorCommand(g *globalFlags) *cobra.Command {
	var (
		configPath string
		output     *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "doctor [--config FILE]",
		Short: "Check that the host can run here: config, data directory, port, clock, servers it reaches, sandbox",
		Long: `doctor checks what the host needs on this machine, without starting it, and
prints one line per check: ok, warn or FAIL, what it found, and for a
warning or failure what to do.

  config          the config file (--config) loads and validates
  data directory  --data-dir exists with mode 0700 and is yours
  key files       the CA journal, the keys and the store in it are owner-only
  listen          listen.address is free, or held by the host on --data-dir
  sandbox         plugins can be contained here (the sandbox probe)
  reach …         each server the host fetches from answers, under the same
                  outbound rules the host applies: the trusted issuers'
                  metadata, remote MCP servers' protected resource metadata
                  and their authorization servers', remote A2A agents' cards
                  and bundles, federated bundle endpoints, and model
                  endpoints (no API key is sent)
  clock           this clock against the Date of the authorization servers'
                  metadata answers: beyond 10s a warning, beyond 30s (the
                  leeway tokens are checked with) a failure

It exits 1 when any check fails, 0 otherwise. On a terminal a live line
shows the servers being reached. -o json prints one JSON object instead,
{"checks": [...], "failed": N, "warnings": N} (see the README, Commands).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			p := newProgress(stderr, g.isTerminal(stderr) && !output.isJSON(), "checking")
			d := &doctor{dataDir: g.dataDir, configPath: configPath, progress: p, now: time.Now}
			results := d.run(cmd.Context())
			p.stop()
			rep := doctorJSON{Checks: results}
			for _, r := range results {
				switch r.Status {
				case checkFail:
					rep.Failed++
				case checkWarn:
					rep.Warnings++
				}
			}
			if output.isJSON() {
				if err := writeJSON(stdout, rep); err != nil {
					return err
				}
			} else {
				writeDoctorText(stdout, rep)
			}
			if rep.Failed > 0 {
				return silentExit{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", defaultConfigFile, "config file of the host to check")
	output = addOutputFlag(cmd)
	return cmd
}

// writeDoctorText prints the report one check a line, then a summary.
func writeDoctorText(w io.Writer, rep doctorJSON) {
	for _, r := range rep.Checks {
		line := fmt.Sprintf("%-4s  %s: %s", r.Status, r.Check, r.Message)
		if r.Hint != "" {
			line += " (" + r.Hint + ")"
		}
		// Messages quote what servers answered.
		fmt.Fprintln(w, clean(line))
	}
	fmt.Fprintf(w, "%s: %d failed, %s\n", plural(int64(len(rep.Checks)), "check"), rep.Failed, plural(int64(rep.Warnings), "warning"))
}

// doctor runs the checks of agenthost doctor.
type doctor struct {
	dataDir    string
	configPath string
	progress   *progress
	now        func() time.Time

	cfg *config.Config
	// running is the host running on the data directory, if any.
	running *host.RunInfo
}

// errNotMetadata marks an answer that is JSON but not the metadata
// asked for (another issuer's, or without a token endpoint).
var errNotMetadata = errors.New("not the metadata asked for")

// serverDate is how far a server's clock (its Date header) is ahead of
// this one's.
type serverDate struct {
	server string
	skew   time.Duration
}

func (d *doctor) run(ctx context.Context) []checkResult {
	if info, err := host.ReadRunInfo(d.dataDir); err == nil {
		d.running = &info
	}
	results := []checkResult{d.checkConfig()}
	results = append(results, d.checkDataDir()...)
	if d.cfg != nil {
		results = append(results, d.checkListen())
	}
	results = append(results, d.checkSandbox())
	if d.cfg == nil {
		return results
	}
	reach, dates := d.checkReach(ctx)
	results = append(results, reach...)
	if r, ok := checkClock(dates); ok {
		results = append(results, r)
	}
	return results
}

// checkConfig loads and validates the config file.
func (d *doctor) checkConfig() checkResult {
	r := checkResult{Check: "config"}
	cfg, err := config.Load(d.configPath)
	var errs config.Errors
	switch {
	case errors.As(err, &errs):
		r.Status = checkFail
		r.Message = fmt.Sprintf("%s has %s; the first: %s", d.configPath, plural(int64(len(errs)), "problem"), errs[0].Error())
		r.Hint = "agenthost validate " + shellQuote(d.configPath) + " lists them; the checks that need the config were not run"
	case err != nil:
		// config.Load's own prefix would repeat the check's name.
		cause := errors.Unwrap(err)
		if cause == nil {
			cause = err
		}
		r.Status = checkFail
		r.Message = cause.Error()
		r.Hint = "name the config file with --config; the checks that need it were not run"
	default:
		d.cfg = cfg
		r.Status = checkOK
		r.Message = fmt.Sprintf("%s is valid (trust domain %s, issuer %s)", d.configPath, cfg.TrustDomain, cfg.IssuerURL())
	}
	return r
}

// checkDataDir checks the data directory, and the files in it that hold
// keys and secrets.
func (d *doctor) checkDataDir() []checkResult {
	dir := d.dataDir
	r := checkResult{Check: "data directory"}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Status, r.Message = checkWarn, dir+" does not exist yet"
		r.Hint = "up creates it, with mode 0700"
		return []checkResult{r}
	case err != nil:
		r.Status, r.Message = checkFail, err.Error()
		return []checkResult{r}
	case !fi.IsDir():
		r.Status, r.Message = checkFail, dir+" is not a directory"
		r.Hint = "give --data-dir a directory"
		return []checkResult{r}
	}
	uid := os.Geteuid()
	if owner, ok := fileOwner(fi); ok && owner != uid {
		r.Status, r.Message = checkFail, fmt.Sprintf("%s belongs to uid %d, not to you (uid %d)", dir, owner, uid)
		r.Hint = "run agenthost as the user that owns it"
		return []checkResult{r}
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		if perm&0o077 != 0 {
			r.Status = checkFail
			r.Message = fmt.Sprintf("%s has mode %04o: it holds keys, and group or others can reach it; up refuses it", dir, perm)
		} else {
			r.Status = checkWarn
			r.Message = fmt.Sprintf("%s has mode %04o, not 0700", dir, perm)
		}
		r.Hint = "chmod 700 " + shellQuote(dir)
		return []checkResult{r}
	}
	r.Status, r.Message = checkOK, dir+" has mode 0700 and is yours"
	return []checkResult{r, d.checkKeyFiles(uid)}
}

// secretFiles are the files of a data directory that hold keys or the
// store (whose tables hold the authorization server's keys): each must be
// readable by its owner only. A pattern may match several.
var secretFiles = []string{
	"ca/journal.json",
	"audit/signing.key",
	"clients/*.key",
	"agenthost.db", "agenthost.db-wal", "agenthost.db-shm",
}

// checkKeyFiles checks that the files holding keys are owner-only.
func (d *doctor) checkKeyFiles(uid int) checkResult {
	r := checkResult{Check: "key files"}
	var paths []string
	for _, pat := range secretFiles {
		m, _ := filepath.Glob(filepath.Join(d.dataDir, filepath.FromSlash(pat)))
		paths = append(paths, m...)
	}
	if d.cfg != nil && d.cfg.Storage.Driver == config.DriverSQLite && d.cfg.Storage.Path != "" {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(d.cfg.Storage.Path + suffix); err == nil {
				paths = append(paths, d.cfg.Storage.Path+suffix)
			}
		}
	}
	var found, loose, foreign []string
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		name := p
		if rel, err := filepath.Rel(d.dataDir, p); err == nil && !strings.HasPrefix(rel, "..") {
			name = filepath.ToSlash(rel)
		}
		found = append(found, name)
		if owner, ok := fileOwner(fi); ok && owner != uid {
			foreign = append(foreign, fmt.Sprintf("%s (uid %d)", name, owner))
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			loose = append(loose, fmt.Sprintf("%s (%04o)", name, perm))
		}
	}
	switch {
	case len(foreign) > 0:
		r.Status, r.Message = checkFail, "not yours: "+strings.Join(foreign, ", ")
		r.Hint = "run agenthost as the user that owns the data directory's files"
	case len(loose) > 0:
		r.Status, r.Message = checkFail, "group or others can read "+strings.Join(loose, ", ")
		var quoted []string
		for _, l := range loose {
			name, _, _ := strings.Cut(l, " (")
			if !filepath.IsAbs(name) {
				name = filepath.Join(d.dataDir, filepath.FromSlash(name))
			}
			quoted = append(quoted, shellQuote(name))
		}
		r.Hint = "chmod 600 " + strings.Join(quoted, " ")
	case len(found) == 0:
		r.Status, r.Message = checkOK, "none yet (up creates them owner-only)"
	default:
		r.Status, r.Message = checkOK, "owner-only: "+strings.Join(found, ", ")
	}
	return r
}

// checkListen checks that listen.address can be bound, or is held by the
// host running on the data directory.
func (d *doctor) checkListen() checkResult {
	addr := string(d.cfg.Listen.Address)
	r := checkResult{Check: "listen"}
	if d.running != nil && sameAddress(d.running.Address, addr) {
		r.Status, r.Message = checkOK, fmt.Sprintf("%s is held by the host running on %s (pid %d)", addr, d.dataDir, d.running.PID)
		return r
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		r.Status, r.Message = checkOK, addr+" is free"
		return r
	}
	r.Status = checkFail
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		r.Message = addr + " is in use by another program"
		r.Hint = "stop it (another agenthost on another data directory?), or change listen.address"
		if d.running != nil {
			r.Hint = fmt.Sprintf("the host on %s listens on %s; stop the program on %s, or change listen.address", d.dataDir, d.running.Address, addr)
		}
	case errors.Is(err, syscall.EACCES):
		r.Message = "not allowed to listen on " + addr
		r.Hint = "use a port above 1023, or give the program the right to bind it"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		r.Message = addr + ": no interface of this machine has that address"
		r.Hint = "change listen.address"
	default:
		r.Message = err.Error()
		r.Hint = "change listen.address"
	}
	return r
}

// sameAddress reports whether two host:port addresses are the same
// listener: equal, or the same port where one is a wildcard address.
func sameAddress(a, b string) bool {
	if a == b {
		return true
	}
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ah == bh || wild(ah) || wild(bh)
}

// checkSandbox probes the plugin sandbox.
func (d *doctor) checkSandbox() checkResult {
	r := checkResult{Check: "sandbox"}
	var strict, none []string
	if d.cfg == nil {
		strict = []string{"every plugin (the default)"}
	} else {
		for _, a := range d.cfg.Agents {
			sc, _ := d.cfg.AgentSandbox(a.Name)
			if sc.Level == config.SandboxNone {
				none = append(none, "agent "+a.Name)
			} else {
				strict = append(strict, "agent "+a.Name)
			}
		}
		for _, p := range d.cfg.MCP.Plugins {
			sc, _ := d.cfg.PluginSandbox(p.Name)
			if sc.Level == config.SandboxNone {
				none = append(none, "tool plugin "+p.Name)
			} else {
				strict = append(strict, "tool plugin "+p.Name)
			}
		}
	}
	prot, err := probeSandbox()
	switch {
	case err != nil && len(strict) > 0:
		r.Status, r.Message = checkFail, fmt.Sprintf("%s needs sandbox level strict, which this machine cannot give: %v", strict[0], err)
		r.Hint = "see docs/agents.md, Plugin sandbox; to run a plugin uncontained for debugging, set its sandbox level to none and start with --unsafe-no-sandbox"
	case err != nil:
		r.Status, r.Message = checkWarn, fmt.Sprintf("not available here (no plugin needs it now): %v", err)
		r.Hint = "a plugin added later with sandbox level strict will not start"
	case len(none) > 0:
		r.Status, r.Message = checkWarn, fmt.Sprintf("%s; but %s run uncontained (sandbox level none)", prot, strings.Join(none, ", "))
		r.Hint = "up starts them only with --unsafe-no-sandbox: debugging only"
	case len(prot.Missing) > 0:
		r.Status, r.Message = checkWarn, fmt.Sprintf("%s; missing: %s", prot, strings.Join(prot.Missing, "; "))
		r.Hint = "plugins run, without the protections named missing"
	default:
		r.Status, r.Message = checkOK, prot.String()
	}
	return r
}

// checkClock turns the servers' dates into one result: the largest skew.
// It reports false when no server gave a date.
func checkClock(dates []serverDate) (checkResult, bool) {
	if len(dates) == 0 {
		return checkResult{}, false
	}
	worst := dates[0]
	for _, sd := range dates[1:] {
		if sd.skew.Abs() > worst.skew.Abs() {
			worst = sd
		}
	}
	r := checkResult{Check: "clock"}
	skew := worst.skew.Abs().Round(time.Second)
	direction := "behind"
	if worst.skew < 0 {
		direction = "ahead of"
	}
	switch {
	case worst.skew.Abs() > skewFail:
		r.Status = checkFail
		r.Message = fmt.Sprintf("this machine's clock is %s %s %s (its Date header)", skew, direction, worst.server)
		r.Hint = fmt.Sprintf("synchronize the clock (NTP): tokens and proofs are checked with %s of leeway", skewFail)
	case worst.skew.Abs() > skewWarn:
		r.Status = checkWarn
		r.Message = fmt.Sprintf("this machine's clock is %s %s %s (its Date header)", skew, direction, worst.server)
		r.Hint = fmt.Sprintf("synchronize the clock (NTP) before it drifts past the %s tokens allow", skewFail)
	default:
		r.Status = checkOK
		whose := "their Date headers"
		if len(dates) == 1 {
			whose = "its Date header"
		}
		r.Message = fmt.Sprintf("within %s of %s (%s)", max(skew, time.Second), plural(int64(len(dates)), "server"), whose)
	}
	return r, true
}

// endpointCheck is one server doctor reaches.
type endpointCheck struct {
	check string
	run   func(ctx context.Context, dates *dateLog) checkResult
}

// dateLog collects the servers' dates of one check.
type dateLog struct {
	now   func() time.Time
	dates []serverDate
}

// fetchJSON fetches a JSON object with f and notes the server's Date.
func (l *dateLog) fetchJSON(ctx context.Context, f *fetch.Fetcher, rawURL string, v any) (*fetch.Response, error) {
	t0 := l.now()
	resp, err := f.JSON(ctx, rawURL, v)
	t1 := l.now()
	if err == nil {
		if date, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			// The Date header has whole seconds: the server's time was
			// up to a second after it, half a second after on average.
			date = date.Add(500 * time.Millisecond)
			mid := t0.Add(t1.Sub(t0) / 2)
			server := rawURL
			if u, err := url.Parse(rawURL); err == nil {
				server = u.Scheme + "://" + u.Host
			}
			l.dates = append(l.dates, serverDate{server: server, skew: date.Sub(mid)})
		}
	}
	return resp, err
}

// checkReach reaches every server the config names, concurrently, and
// returns the results in config order with the dates of the
// authorization servers' answers.
func (d *doctor) checkReach(ctx context.Context) ([]checkResult, []serverDate) {
	checks := d.endpointChecks()
	if len(checks) == 0 {
		return nil, nil
	}
	results := make([]checkResult, len(checks))
	logs := make([]dateLog, len(checks))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	d.progress.set(fmt.Sprintf("reaching %s", plural(int64(len(checks)), "server")))
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs[i].now = d.now
			res := c.run(ctx, &logs[i])
			res.Check = c.check
			results[i] = res
			mu.Lock()
			done++
			d.progress.set(fmt.Sprintf("reached %d of %s", done, plural(int64(len(checks)), "server")))
			mu.Unlock()
		}()
	}
	wg.Wait()
	var dates []serverDate
	for _, l := range logs {
		dates = append(dates, l.dates...)
	}
	return results, dates
}

// endpointChecks lists the servers the config names.
func (d *doctor) endpointChecks() []endpointCheck {
	cfg := d.cfg
	var out []endpointCheck
	for _, ti := range cfg.Auth.TrustedIssuers {
		out = append(out, endpointCheck{check: "reach trusted issuer " + ti.Issuer,
			run: func(ctx context.Context, l *dateLog) checkResult { return d.reachIssuer(ctx, l, ti.Issuer) }})
	}
	for _, rc := range cfg.MCP.Remotes {
		if rc.URL == "" {
			continue // a local server, started as a command
		}
		out = append(out, endpointCheck{check: "reach mcp remote " + rc.Name,
			run: func(ctx context.Context, l *dateLog) checkResult { return d.reachMCPRemote(ctx, l, rc) }})
	}
	for _, rc := range cfg.A2A.Remotes {
		out = append(out, endpointCheck{check: "reach a2a remote " + rc.Name,
			run: func(ctx context.Context, l *dateLog) checkResult { return d.reachA2ARemote(ctx, l, rc) }})
	}
	for _, fd := range cfg.Federation.TrustDomains {
		out = append(out, endpointCheck{check: "reach federated " + fd.Name,
			run: func(ctx context.Context, _ *dateLog) checkResult { return d.reachFederated(ctx, fd) }})
	}
	aliases := make([]string, 0, len(cfg.Models))
	for alias := range cfg.Models {
		aliases = append(aliases, alias)
	}
	slices.Sort(aliases)
	for _, alias := range aliases {
		m := cfg.Models[alias]
		base := m.BaseURL
		switch m.Provider {
		case config.ProviderOpenAI:
			if base == "" {
				base = llmopenai.DefaultBaseURL
			}
		case config.ProviderAnthropic:
			if base == "" {
				base = llmanthropic.DefaultBaseURL
			}
		default:
			continue // the offline model reaches nothing
		}
		out = append(out, endpointCheck{check: "reach model " + alias,
			run: func(ctx context.Context, _ *dateLog) checkResult { return reachModel(ctx, alias, base) }})
	}
	return out
}

// unreachable describes a failed fetch: refused by the outbound rules, an
// answer that is not what was asked for, or no answer at all.
func unreachable(what string, err error) checkResult {
	r := checkResult{Status: checkFail}
	switch {
	case errors.Is(err, fetch.ErrPrivateAddress), errors.Is(err, fetch.ErrInvalidURL):
		r.Message = fmt.Sprintf("%s: refused by the outbound-fetch rules: %v", what, err)
		r.Hint = "loopback and private addresses need auth.allow_private_fetch (development only)"
	case errors.Is(err, errNotMetadata):
		_, detail, _ := strings.Cut(err.Error(), ": ")
		r.Message = fmt.Sprintf("%s answers, but not with its metadata: %s", what, detail)
		r.Hint = "the issuer in the config must be the one its metadata names"
	case errors.Is(err, fetch.ErrStatus), errors.Is(err, fetch.ErrBadJSON), errors.Is(err, fetch.ErrTooLarge), errors.Is(err, fetch.ErrRedirect):
		r.Message = fmt.Sprintf("%s answers, but not with its metadata: %v", what, err)
		r.Hint = "check the URL in the config"
	default:
		r.Message = fmt.Sprintf("%s does not answer: %v", what, err)
		r.Hint = "check the URL, the network, and any proxy or firewall between"
	}
	return r
}

// notChecked is the result for a server doctor does not reach itself:
// ok for this host's own servers, a warning for the others.
func (d *doctor) notChecked(rawURL string) (checkResult, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return checkResult{}, false
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	own := []string{strings.ToLower(d.cfg.IssuerURL())}
	if ou, err := url.Parse(d.cfg.IssuerURL()); err == nil {
		own = append(own, strings.ToLower(ou.Scheme+"://"+ou.Host))
	}
	own = append(own, "http://"+string(d.cfg.Listen.Address), "https://"+string(d.cfg.Listen.Address))
	if slices.Contains(own, origin) && d.running == nil {
		return checkResult{Status: checkOK,
			Message: fmt.Sprintf("%s is this host's own, and no host runs on %s: checked once it runs", rawURL, d.dataDir)}, true
	}
	for _, fd := range d.cfg.Federation.TrustDomains {
		for _, p := range fd.Peers {
			if po, err := config.ParseOrigin(p); err == nil && po == origin {
				return checkResult{Status: checkWarn,
					Message: fmt.Sprintf("%s not checked: the host reaches it with an X.509-SVID (federation.trust_domains %s, peers), which doctor does not hold", rawURL, fd.Name),
					Hint:    "once the host runs, its log says whether it reached it"}, true
			}
		}
	}
	return checkResult{}, false
}

// reachIssuer fetches a trusted issuer's metadata as the host discovers
// it: allow_private_fetch lets it reach loopback and private addresses,
// and plain http on loopback only.
func (d *doctor) reachIssuer(ctx context.Context, l *dateLog, issuer string) checkResult {
	if r, ok := d.notChecked(issuer); ok {
		return r
	}
	u, _ := url.Parse(issuer)
	private := d.cfg.Auth.AllowPrivateFetch
	f := fetch.New(fetch.Config{AllowHTTP: private && u != nil && isLoopbackHost(u.Hostname()), AllowPrivate: private})
	md, at, err := discoverServer(ctx, l, f, issuer)
	if err != nil {
		return unreachable(issuer, err)
	}
	return checkResult{Status: checkOK, Message: fmt.Sprintf("metadata at %s (token endpoint %s)", at, md.TokenEndpoint)}
}

// discoverServer fetches an authorization server's metadata from the
// places an issuer's metadata may be, in order, and takes the first
// document that names the issuer and a token endpoint (RFC 8414 §3.3).
func discoverServer(ctx context.Context, l *dateLog, f *fetch.Fetcher, issuer string) (*oauth.ServerMetadata, string, error) {
	urls, err := oauth.ServerMetadataURLs(issuer)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", fetch.ErrInvalidURL, err)
	}
	var first error
	for _, u := range urls {
		var md oauth.ServerMetadata
		_, err := l.fetchJSON(ctx, f, u, &md)
		switch {
		case err != nil:
		case md.Issuer != issuer:
			err = fmt.Errorf("%w: %s names issuer %q, not %q", errNotMetadata, u, md.Issuer, issuer)
		case md.TokenEndpoint == "":
			err = fmt.Errorf("%w: %s names no token_endpoint", errNotMetadata, u)
		default:
			return &md, u, nil
		}
		// The first failure is the telling one: the later places are
		// tried only because the first did not serve metadata.
		if first == nil || (errors.Is(first, fetch.ErrStatus) && !errors.Is(err, fetch.ErrStatus)) {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", first
}

// reachMCPRemote fetches a remote MCP server's protected resource
// metadata (RFC 9728), then its authorization server's, as the host's
// client does: plain http and private addresses only for a server on a
// loopback address.
func (d *doctor) reachMCPRemote(ctx context.Context, l *dateLog, rc config.MCPRemoteConfig) checkResult {
	if r, ok := d.notChecked(rc.URL); ok {
		return r
	}
	u, _ := url.Parse(rc.URL)
	local := u != nil && isLoopbackHost(u.Hostname())
	f := fetch.New(fetch.Config{AllowHTTP: local, AllowPrivate: local})
	prm, err := oauth.ProtectedResourceMetadataURL(rc.URL)
	if err != nil {
		return unreachable(rc.URL, fmt.Errorf("%w: %w", fetch.ErrInvalidURL, err))
	}
	var md oauth.ResourceMetadata
	if _, err := l.fetchJSON(ctx, f, prm, &md); err != nil {
		if errors.Is(err, fetch.ErrStatus) {
			return checkResult{Status: checkWarn,
				Message: fmt.Sprintf("%s answers, but serves no protected resource metadata at %s: %v", rc.URL, prm, err),
				Hint:    "a server that needs a token must publish it (RFC 9728)"}
		}
		return unreachable(rc.URL, err)
	}
	if md.Resource != rc.URL {
		return checkResult{Status: checkFail, Message: fmt.Sprintf("the metadata at %s names resource %q, not %s", prm, md.Resource, rc.URL),
			Hint: "mcp.remotes url must be the resource identifier the server announces"}
	}
	if len(md.AuthorizationServers) == 0 {
		return checkResult{Status: checkFail, Message: fmt.Sprintf("the metadata at %s names no authorization server", prm),
			Hint: "the server's operator must list its authorization server"}
	}
	as := md.AuthorizationServers[0]
	if _, _, err := discoverServer(ctx, l, f, as); err != nil {
		r := unreachable("its authorization server "+as, err)
		return r
	}
	return checkResult{Status: checkOK, Message: fmt.Sprintf("%s: metadata at %s; authorization server %s answers", rc.URL, prm, as)}
}

// reachA2ARemote fetches a remote A2A agent's card, and its bundle when
// the config names a bundle URL, as the host does: plain http and private
// addresses only on loopback with allow_private_fetch.
func (d *doctor) reachA2ARemote(ctx context.Context, l *dateLog, rc config.A2ARemoteConfig) checkResult {
	if r, ok := d.notChecked(rc.URL); ok {
		return r
	}
	dev := d.cfg.Auth.AllowPrivateFetch
	local := dev && urlIsLoopback(rc.URL)
	f := fetch.New(fetch.Config{AllowHTTP: local, AllowPrivate: local})
	card := a2aremote.CardURL(rc.URL)
	if _, err := f.JSON(ctx, card, nil); err != nil {
		return unreachable(card, err)
	}
	msg := "card at " + card
	if rc.BundleURL != "" {
		bl := dev && urlIsLoopback(rc.BundleURL)
		bf := fetch.New(fetch.Config{AllowHTTP: bl, AllowPrivate: bl})
		if _, err := bf.JSON(ctx, rc.BundleURL, nil); err != nil {
			return unreachable(rc.BundleURL, err)
		}
		msg += ", bundle at " + rc.BundleURL
	}
	return checkResult{Status: checkOK, Message: msg}
}

// reachFederated fetches a federated trust domain's bundle once, with
// the federation package's own rules (the endpoint's profile, its
// bundle_file and ca_file, allow_private_fetch).
func (d *doctor) reachFederated(ctx context.Context, fd config.FederatedDomainConfig) checkResult {
	p := federation.Peer{TrustDomain: fd.Name, EndpointURL: fd.BundleEndpoint,
		Profile: federation.Profile(fd.EffectiveProfile()), EndpointSPIFFEID: fd.EndpointSPIFFEID}
	if fd.BundleFile != "" {
		b, err := os.ReadFile(fd.BundleFile)
		if err != nil {
			return checkResult{Status: checkFail, Message: "bundle_file: " + err.Error(), Hint: "fix federation.trust_domains bundle_file"}
		}
		p.Bundle = b
	}
	if fd.CAFile != "" {
		pem, err := os.ReadFile(fd.CAFile)
		if err != nil {
			return checkResult{Status: checkFail, Message: "ca_file: " + err.Error(), Hint: "fix federation.trust_domains ca_file"}
		}
		p.Roots = x509.NewCertPool()
		if !p.Roots.AppendCertsFromPEM(pem) {
			return checkResult{Status: checkFail, Message: "ca_file " + fd.CAFile + " holds no PEM certificate", Hint: "fix federation.trust_domains ca_file"}
		}
	}
	private := d.cfg.Auth.AllowPrivateFetch
	set, err := federation.New(ctx, federation.Config{Peers: []federation.Peer{p}, AllowPrivate: private, AllowHTTP: private})
	if err != nil {
		return checkResult{Status: checkFail, Message: err.Error(), Hint: "fix federation.trust_domains " + fd.Name}
	}
	if err := set.Refresh(ctx, fd.Name); err != nil {
		return unreachable(fd.BundleEndpoint, err)
	}
	return checkResult{Status: checkOK, Message: "bundle fetched from " + fd.BundleEndpoint}
}

// reachModel asks a model endpoint for anything: any HTTP answer means it
// is reachable. No API key is sent and no redirect followed.
func reachModel(ctx context.Context, alias, base string) checkResult {
	ctx, cancel := context.WithTimeout(ctx, fetch.DefaultTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return checkResult{Status: checkFail, Message: err.Error(), Hint: "fix models." + alias + ".base_url"}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return checkResult{Status: checkFail, Message: fmt.Sprintf("%s does not answer: %v", base, err),
			Hint: "check models." + alias + ".base_url and that the server runs"}
	}
	resp.Body.Close()
	return checkResult{Status: checkOK, Message: fmt.Sprintf("%s answers (%s; no API key sent)", base, resp.Status)}
}

// isLoopbackHost reports whether a URL's host is localhost or a loopback
// address.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// urlIsLoopback reports whether raw is a URL on a loopback host.
func urlIsLoopback(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && isLoopbackHost(u.Hostname())
}
