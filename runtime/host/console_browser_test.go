package host

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// The console's browser test drives Chromium through the console of a
// quickstart host the way its operator and a user do, and takes the
// screenshots docs/console.md shows: each page is saved in the test's temporary
// directory, and with -update-screenshot (or AGENTHOST_UPDATE_SCREENSHOT=1)
// also as docs/console-<page>.png:
//
//	go test -run TestConsoleInBrowser ./runtime/host -update-screenshot

// The console's browser window: wide enough for its tables.
const consoleWidth, consoleHeight = 1280, 900

// maxShotHeight cuts a screenshot of a long page.
const maxShotHeight = 1600

// TestConsoleInBrowser: on the quickstart host, with alice as the
// console's admin and bob as a plain user, after a few of the quickstart's
// tasks (research telling alice the time, the assistant asking payments
// for bob's balance, and alice's transfer of 500, which waits for her
// approval), alice signs in to the console at the host's authorization
// server and sees every agent with its identity, attestation and SVID,
// quarantines research and releases it from the page, sees every task
// (the transfer waiting for approval), her pending request with its
// approval page, finds the records of payments in the audit log with the
// log's checkpoint verified, opens the transfer's transaction drawn as a
// graph, and reads the trust domain's authorities and the signing keys.
// The running task's page follows it live: stopped, it says so without a
// reload. Bob signs in and sees his own task only, no admin page and no
// action.
func TestConsoleInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s; to run this test, install Debian's chromium: apt-get install chromium, or run make browser-deps", chromiumPath)
	}
	if _, err := sandbox.Probe(); err != nil {
		t.Skipf("strict sandbox not available here (%v), and the quickstart host needs it; enable unprivileged user namespaces to run this test", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := quickstartConfig(t)
	hash, err := userauth.HashPassword("bob-test-password")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Users = append(cfg.Auth.Users, config.UserConfig{Name: "bob", DisplayName: "Bob Example", PasswordHash: hash})
	cfg.Console.Admins = []string{"alice"}
	dataDir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dataDir)
	waitAllRunning(ctx, t, dataDir, 3)
	shots := t.TempDir()

	// The quickstart's tasks.
	research := consoleTask(ctx, t, h, "research", "What time is it now?", "alice")
	if !strings.Contains(research.final, "The clock/now tool returned") {
		t.Fatalf("research: %+v", research)
	}
	balance := consoleTask(ctx, t, h, "assistant", "what is the balance of account: bob", "bob")
	if !strings.Contains(balance.final, "payments/balance tool returned: bob:") {
		t.Fatalf("balance: %+v", balance)
	}
	transfer := make(chan localapi.TaskEvent, 8)
	transferDone := make(chan error, 1)
	go func() {
		transferDone <- h.RunTask(ctx, localapi.TaskRequest{Agent: "assistant", Input: "transfer from: alice to: bob amount: 500", Subject: "alice"},
			func(ev localapi.TaskEvent) error {
				select {
				case transfer <- ev:
				default:
				}
				return nil
			})
	}()
	var approval localapi.TaskEvent
	for approval.Type != "approval" {
		select {
		case approval = <-transfer:
		case err := <-transferDone:
			t.Fatalf("the transfer ended without asking for approval: %v", err)
		case <-ctx.Done():
			t.Fatal("no approval request for the transfer")
		}
	}
	console := h.Issuer() + "/console"

	// Alice signs in at the authorization server and allows the console.
	alice := newChromium(t, ctx)
	alice.viewport(consoleWidth, consoleHeight)
	alice.navigate(console + "/")
	if status := alice.signIn("alice", "alice-demo-password"); status != 200 {
		t.Fatalf("alice's sign-in: %d %+v", status, alice.read())
	}
	if p := alice.read(); p.Title != "Allow access?" || !strings.Contains(p.Text, "agenthost console") {
		t.Fatalf("not the consent page: %+v", p)
	}
	if status := alice.click(`main form button[name="decision"][value="allow"]`); status != 200 {
		t.Fatalf("allow: %d", status)
	}

	// Agents.
	p := alice.read()
	if p.URL != console+"/agents" || p.Title != "Agents" {
		t.Fatalf("alice did not land on the agents: %+v", p)
	}
	for _, a := range []string{"research", "payments", "assistant"} {
		row := alice.text(`tr[data-agent="` + a + `"]`)
		for _, want := range []string{"spiffe://agenthost.local/agent/" + a, "running", "verified", h.agentDigests[a][:16], "expires in"} {
			if !strings.Contains(row, want) {
				t.Errorf("agent %s's row lacks %q: %q", a, want, row)
			}
		}
	}
	if !strings.Contains(p.Text, "Alice Example") || !strings.Contains(p.Text, "admin") {
		t.Errorf("the page does not name alice as admin: %q", p.Text)
	}
	alice.shot(shots, "agents")

	// Quarantine research from the page, then release it.
	alice.fill(`tr[data-agent="research"] input[name="reason"]`, "suspicious")
	if status := alice.click(`tr[data-agent="research"] button[value="quarantine"]`); status != 200 {
		t.Fatalf("quarantine: %d %+v", status, alice.read())
	}
	if row := alice.text(`tr[data-agent="research"]`); !strings.Contains(row, "quarantined") || strings.Contains(row, "expires in") {
		t.Errorf("research after its quarantine: %q", row)
	}
	if st := agentState(h, "research"); st != supervisor.StateQuarantined {
		t.Fatalf("research is %s after the quarantine", st)
	}
	alice.fill(`tr[data-agent="research"] input[name="reason"]`, "checked")
	if status := alice.click(`tr[data-agent="research"] button[value="release"]`); status != 200 {
		t.Fatalf("release: %d %+v", status, alice.read())
	}
	if _, err := h.sup.WaitFor(ctx, "research", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
		t.Fatalf("research after its release: %v", err)
	}
	var remedies []string
	for _, e := range auditEntries(t, h) {
		if r := e.Record; r.Action == audit.ActionRemediation && r.Agent == "research" {
			remedies = append(remedies, r.Remedy+": "+r.Reason)
		}
	}
	if want := "quarantine: suspicious (console: alice)|release: checked (console: alice)"; strings.Join(remedies, "|") != want {
		t.Errorf("the audit log's remedies: %q, want %q", remedies, want)
	}

	// Tasks: every task, the transfer waiting for approval.
	alice.navigate(console + "/tasks")
	tasks := alice.read()
	for _, id := range []string{research.task, balance.task, approval.TaskID} {
		if !strings.Contains(tasks.Text, id) {
			t.Errorf("the tasks page lacks task %s", id)
		}
	}
	if row := alice.text(`tr[data-task="` + approval.TaskID + `"]`); !strings.Contains(row, "payments") || !strings.Contains(row, "running") ||
		!strings.Contains(row, "waiting for approval") || !strings.Contains(row, "alice") {
		t.Errorf("the waiting transfer's row: %q", row)
	}
	if row := alice.text(`tr[data-task="` + research.task + `"]`); !strings.Contains(row, "completed") || !strings.Contains(row, "What time is it now?") {
		t.Errorf("research's row: %q", row)
	}
	alice.shot(shots, "tasks")

	// Approvals: alice's request, linked to its approval page.
	alice.navigate(console + "/approvals")
	if row := alice.text(`tr[data-approval]`); !strings.Contains(row, "agenthost: payments/transfer 500 to bob") || !strings.Contains(row, "payments/transfer") {
		t.Errorf("the approvals page: %q", row)
	}
	if href := alice.attr(`tr[data-approval] a.button`, "href"); href != approval.URL {
		t.Errorf("the request links to %q, want %q", href, approval.URL)
	}
	alice.shot(shots, "approvals")

	// Audit: the records of payments, then the transfer's transaction.
	alice.navigate(console + "/audit")
	if v := alice.text(`#verification`); !strings.Contains(v, "Verified at") {
		t.Errorf("the log's verification: %q", v)
	}
	if cp := alice.text(`#checkpoint-size`); !strings.HasSuffix(cp, "records") {
		t.Errorf("the checkpoint: %q", cp)
	}
	alice.fill(`#search input[name="agent"]`, "payments")
	alice.fill(`#search input[name="action"]`, "tool.call")
	alice.click(`#search button[type="submit"]`)
	records := alice.text(`#records`)
	for _, want := range []string{"payments/balance", "payments/transfer", "approval_required", approval.Txn} {
		if !strings.Contains(records, want) {
			t.Errorf("the search for payments' tool calls lacks %q: %q", want, records)
		}
	}
	if strings.Contains(records, "clock/now") {
		t.Errorf("the search for payments' tool calls shows research's: %q", records)
	}
	alice.shot(shots, "audit")
	alice.click(`#records a.txn[href$="/` + approval.Txn + `"]`)
	if p := alice.read(); p.Title != "Transaction "+approval.Txn {
		t.Fatalf("not the transaction's page: %+v", p)
	}
	graph := alice.text(`#graph`)
	for _, want := range []string{"alice", "assistant", "payments", "payments/transfer", "delegates", "waiting for approval"} {
		if !strings.Contains(graph, want) {
			t.Errorf("the graph lacks %q: %q", want, graph)
		}
	}
	if n := alice.count(`#graph g.edge.approval`); n != 1 {
		t.Errorf("%d approval edges in the graph", n)
	}
	if n := alice.count(`#graph g.node.agent`); n != 2 {
		t.Errorf("%d agents in the graph", n)
	}
	alice.shot(shots, "trace")

	// Trust.
	alice.navigate(console + "/trust")
	if td := alice.text(`#trust-domain`); td != "agenthost.local" {
		t.Errorf("trust domain %q", td)
	}
	auth := alice.text(`#authorities`)
	for _, kind := range []string{"x509", "jwt", "wit"} {
		if !strings.Contains(auth, kind+"\tcurrent") {
			t.Errorf("no current %s authority: %q", kind, auth)
		}
	}
	keys := alice.text(`#signing-keys`)
	for _, k := range h.as.SigningKeys() {
		if !strings.Contains(keys, k.KID) || !strings.Contains(keys, k.State) {
			t.Errorf("the signing key %s (%s) is not listed: %q", k.KID, k.State, keys)
		}
	}
	alice.shot(shots, "trust")

	// The live view: payments' task waits for alice; stopped, the page
	// says so without a reload.
	alice.navigate(console + "/tasks/" + approval.TaskID)
	if w := alice.text(`.waiting-note`); !strings.Contains(w, "Waiting for alice's approval") || !strings.Contains(w, "500 to bob") {
		t.Errorf("the task's page: %q", w)
	}
	if st := alice.text(`#task-state`); st != "running" {
		t.Fatalf("the transfer's state %q", st)
	}
	alice.shot(shots, "task")
	if n := h.StopTasks("alice", "stopped by the console test"); n == 0 {
		t.Fatal("no task of alice's to stop")
	}
	if st := alice.waitText(`#task-state`, "failed"); st != "failed" {
		t.Errorf("the live page says %q once the task stopped", st)
	}
	if res := alice.text(`#task-result`); !strings.Contains(res, "stopped by the console test") {
		t.Errorf("the live page's result: %q", res)
	}

	// Bob sees his own task, no admin page and no action.
	bob := newChromium(t, ctx)
	bob.viewport(consoleWidth, consoleHeight)
	bob.navigate(console + "/")
	if status := bob.signIn("bob", "bob-test-password"); status != 200 {
		t.Fatalf("bob's sign-in: %d", status)
	}
	bob.click(`main form button[name="decision"][value="allow"]`)
	bp := bob.read()
	if bp.URL != console+"/tasks" || !strings.Contains(bp.Text, balance.task) || !strings.Contains(bp.Text, "Bob Example") {
		t.Fatalf("bob's tasks: %+v", bp)
	}
	for _, other := range []string{research.task, approval.TaskID} {
		if strings.Contains(bp.Text, other) {
			t.Errorf("bob sees alice's task %s", other)
		}
	}
	for _, admin := range []string{"Agents", "Audit", "Trust"} {
		if n := bob.count(`nav a[href$="/` + strings.ToLower(admin) + `"]`); n != 0 {
			t.Errorf("bob's navigation offers %s", admin)
		}
	}
	if n := bob.count(`form[action*="/quarantine"], form[action*="/release"], #verify`); n != 0 {
		t.Errorf("bob's page has %d admin forms", n)
	}
	bob.shot(shots, "user-tasks")
	for _, page := range []string{"/agents", "/audit", "/trust"} {
		if status := bob.navigate(console + page); status != 403 {
			t.Errorf("bob on %s: status %d", page, status)
		}
		if n := bob.count(`form[action*="/quarantine"], #verify`); n != 0 {
			t.Errorf("bob on %s has an admin form", page)
		}
	}
	if status := bob.navigate(console + "/tasks/" + research.task); status != 404 {
		t.Errorf("bob on alice's task: status %d", status)
	}
	bob.navigate(console + "/approvals")
	if p := bob.read(); !strings.Contains(p.Text, "Nothing is waiting for approval") {
		t.Errorf("bob's approvals: %q", p.Text)
	}
}

// consoleRun is what a task ended with.
type consoleRun struct {
	task, txn, final, failure string
}

// consoleTask runs input on agent for user and waits for its end.
func consoleTask(ctx context.Context, t *testing.T, h *Host, agent, input, user string) consoleRun {
	t.Helper()
	var r consoleRun
	err := h.RunTask(ctx, localapi.TaskRequest{Agent: agent, Input: input, Subject: user}, func(ev localapi.TaskEvent) error {
		if r.task == "" {
			r.task, r.txn = ev.TaskID, ev.Txn
		}
		switch ev.Type {
		case "final":
			r.final = ev.Text
		case "error":
			r.failure = ev.Text
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s %q: %v", agent, input, err)
	}
	return r
}

// agentState is agent's state in the supervisor.
func agentState(h *Host, agent string) supervisor.State {
	for _, st := range h.sup.Status() {
		if st.Name == agent {
			return st.State
		}
	}
	return ""
}

// auditEntries is the whole audit log.
func auditEntries(t *testing.T, h *Host) []audit.Entry {
	t.Helper()
	es, err := h.AuditRead(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// viewport sets the size of the browser's page.
func (b *chromium) viewport(w, h int64) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h)); err != nil {
		b.t.Fatalf("viewport: %v", err)
	}
}

// fill replaces the value of the input sel with value.
func (b *chromium) fill(sel, value string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value)); err != nil {
		b.t.Fatalf("fill %s: %v", sel, err)
	}
}

// text is the visible text of the first element sel matches (the text of
// an SVG element), "" when none does.
func (b *chromium) text(sel string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? (e.innerText ?? e.textContent).trim() : ""; })()`, sel))
}

// attr is the attribute name of the first element sel matches.
func (b *chromium) attr(sel, name string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? (e.getAttribute(%q) || "") : ""; })()`, sel, name))
}

// count is how many elements sel matches.
func (b *chromium) count(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func (b *chromium) eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate: %v", err)
	}
	return s
}

// waitText waits, without reloading, until the text of sel is want, and
// returns the text it has then (or at the step's timeout).
func (b *chromium) waitText(sel, want string) string {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		got := b.text(sel)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shot saves a PNG of the page down to its card (at most maxShotHeight
// high) in dir as console-<name>.png, and with -update-screenshot in docs/
// as well.
func (b *chromium) shot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	img, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		clip, err := chromedp.Evaluate[page.Viewport](fmt.Sprintf(`(() => ({x: 0, y: 0,
			width: document.documentElement.scrollWidth,
			height: Math.min(%d, Math.ceil(document.querySelector("main").getBoundingClientRect().bottom + scrollY + %d)), scale: 1}))()`,
			maxShotHeight, screenshotMargin))(ctx, t)
		if err != nil {
			return nil, err
		}
		beyond := true
		res, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng, Clip: &clip, CaptureBeyondViewport: &beyond})
		return res.Data, err
	})
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	decoded, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		b.t.Fatalf("the screenshot of %s is not a PNG: %v", name, err)
	}
	if size := decoded.Bounds().Size(); size.X < 800 || size.Y < 200 || size.Y > maxShotHeight {
		b.t.Fatalf("the screenshot of %s is %dx%d", name, size.X, size.Y)
	}
	file := "console-" + name + ".png"
	if err := os.WriteFile(filepath.Join(dir, file), img, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if !*updateScreenshot && os.Getenv("AGENTHOST_UPDATE_SCREENSHOT") != "1" {
		return
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", file), img, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote docs/%s (%dx%d)", file, decoded.Bounds().Dx(), decoded.Bounds().Dy())
}
