package host

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// The browser test drives a real Chromium (Debian's package) through the
// approval page, the way a person does: it follows the redirect to the
// sign-in page, types the user name and password, clicks, reads the page
// and clicks Approve or Deny.
//
// It also takes the screenshot of the approval page that docs/approvals.md shows.
// With -update-screenshot, or AGENTHOST_UPDATE_SCREENSHOT=1, it writes it
// to docs/approval-page.png:
//
//	go test -run TestApprovalInBrowser ./runtime/host -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false,
	"write the approval page's screenshot to docs/approval-page.png (or set AGENTHOST_UPDATE_SCREENSHOT=1)")

const (
	// chromiumPath is where Debian's chromium package installs the browser.
	chromiumPath = "/usr/bin/chromium"
	// screenshotFile is docs/approval-page.png, from this package.
	screenshotFile = "../../docs/approval-page.png"
	// The browser window: the page's card and some of the page around it.
	browserWidth, browserHeight = 1000, 800
	// screenshotMargin is the page background kept around the card.
	screenshotMargin = 24
)

// TestApprovalInBrowser: a transfer that needs alice's approval, decided in
// Chromium. Approved: the browser is sent to sign in, comes back to the
// approval page, which shows the binding message, the agent, the tool and
// the amount; the click on Approve lets the transfer run once, and the
// page cannot be decided again. Opened by bob: the page refuses him and
// offers to sign in with another account; alice does, clicks Deny, and the
// task fails saying she denied it, with nothing transferred.
func TestApprovalInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s; to run this test, install Debian's chromium: apt-get install chromium, or run make browser-deps", chromiumPath)
	}
	// The host polls the server every second; reset once the host is
	// stopped (cleanups run last first).
	cibaInterval = time.Second
	t.Cleanup(func() { cibaInterval = 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := runHost(t, approvalConfig(t), filepath.Join(t.TempDir(), "data"))
	if _, err := h.sup.WaitFor(ctx, "payer", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
		t.Fatal(err)
	}
	const big = `{"from":"alice","to":"bob","amount":500}`

	t.Run("approve", func(t *testing.T) {
		r := startTransfer(ctx, h, "alice", big)
		ev := r.approval(t)
		b := newChromium(t, ctx)

		// Not signed in: the page sends the browser to sign in.
		b.navigate(ev.URL)
		if got := b.read(); got.Title != "Sign in" {
			t.Fatalf("the approval page did not ask to sign in: %+v", got)
		}
		if status := b.signIn("alice", "alice-test-password"); status != 200 {
			t.Fatalf("after signing in: status %d, %+v", status, b.read())
		}
		p := b.read()
		if p.URL != ev.URL {
			t.Errorf("after signing in the browser is at %s, not the approval page %s", p.URL, ev.URL)
		}
		assertApprovalPage(t, p, h)

		b.screenshot()

		if status := b.click(`main form button[name="decision"][value="approve"]`); status != 200 {
			t.Fatalf("approve: status %d, %+v", status, b.read())
		}
		if p := b.read(); p.Title != "Approved" || !strings.Contains(p.Status, "You approved the request") {
			t.Fatalf("after approving: %+v", p)
		}
		r.wait(t)
		if r.err != nil || r.failure != "" || !strings.Contains(r.final, "transferred 500.00 from alice to bob") {
			t.Fatalf("approved transfer: final %q, failure %q, %v", r.final, r.failure, r.err)
		}
		ran := 0
		for _, rec := range toolRecords(t, h, r.task) {
			if rec.Decision == audit.DecisionAllow && rec.Outcome == audit.OutcomeOK {
				ran++
				if rec.Approver != "alice" || rec.ApprovalID == "" {
					t.Errorf("the call's record: %+v", rec)
				}
			}
		}
		if ran != 1 {
			t.Fatalf("the approved transfer ran %d times: %+v", ran, toolRecords(t, h, r.task))
		}

		// Decided: opened again, the page offers no decision.
		if status := b.navigate(ev.URL); status != 409 {
			t.Errorf("the decided page again: status %d", status)
		}
		if p := b.read(); p.Title != "Already decided" || len(p.Buttons) != 0 {
			t.Errorf("the decided page again: %+v", p)
		}
	})

	t.Run("other user, then deny", func(t *testing.T) {
		r := startTransfer(ctx, h, "alice", big)
		ev := r.approval(t)
		b := newChromium(t, ctx)

		// Bob signs in on alice's request: refused, no decision offered.
		b.navigate(ev.URL)
		if status := b.signIn("bob", "bob-test-password"); status != 403 {
			t.Fatalf("bob on alice's request: status %d, %+v", status, b.read())
		}
		p := b.read()
		if p.Title != "Not your request" || !strings.Contains(p.Status, "for another account") ||
			len(p.Buttons) != 0 || strings.Contains(p.Text, "500") {
			t.Fatalf("bob on alice's request: %+v", p)
		}

		// The page's link signs in with another account: alice denies.
		if status := b.click(`main a`); status != 200 {
			t.Fatalf("the link to sign in with another account: status %d, %+v", status, b.read())
		}
		if status := b.signIn("alice", "alice-test-password"); status != 200 {
			t.Fatalf("alice after bob: status %d, %+v", status, b.read())
		}
		assertApprovalPage(t, b.read(), h)
		if status := b.click(`main form button[name="decision"][value="deny"]`); status != 200 {
			t.Fatalf("deny: status %d, %+v", status, b.read())
		}
		if p := b.read(); p.Title != "Denied" {
			t.Fatalf("after denying: %+v", p)
		}
		r.wait(t)
		if r.final != "" || !strings.Contains(r.failure, "alice denied the approval") {
			t.Fatalf("denied transfer: final %q, failure %q, %v", r.final, r.failure, r.err)
		}
		assertRefused(t, h, r.task, "denied")
	})
}

// assertApprovalPage checks that p is the approval page of alice's
// transfer of 500 to bob.
func assertApprovalPage(t *testing.T, p browserPage, h *Host) {
	t.Helper()
	if p.Title != "Approve an agent's action?" {
		t.Fatalf("not the approval page: %+v", p)
	}
	if p.Binding != "agenthost: payments/transfer 500 to bob" {
		t.Errorf("binding message %q", p.Binding)
	}
	if !strings.Contains(p.Text, "act as alice") {
		t.Errorf("the page does not say for whom: %q", p.Text)
	}
	// The request's client is the host, which asks on its agent's behalf.
	if agent := p.Fields["Requested by"]; !strings.Contains(agent, h.hostID.String()) {
		t.Errorf("agent %q, want %s", agent, h.hostID)
	}
	// The agent making the call is named with it.
	if by := p.Fields["Called by"]; by != "payer" {
		t.Errorf("called by %q, want payer", by)
	}
	if tool := p.Fields["Tool"]; tool != "payments/transfer" {
		t.Errorf("tool %q", tool)
	}
	var args struct {
		From, To string
		Amount   json.Number
	}
	if err := json.Unmarshal([]byte(p.Fields["Arguments"]), &args); err != nil || args.Amount != "500" || args.From != "alice" || args.To != "bob" {
		t.Errorf("arguments %q: %+v, %v", p.Fields["Arguments"], args, err)
	}
	if want := []string{"Approve", "Deny"}; strings.Join(p.Buttons, ",") != strings.Join(want, ",") {
		t.Errorf("buttons %q, want %q", p.Buttons, want)
	}
}

// chromium is one headless Chromium with one tab, for one test.
type chromium struct {
	t   *testing.T
	ctx context.Context
}

// newChromium starts Chromium for t; it is closed when t ends, passed or
// not, and the allocator waits for its processes to be gone. Every
// browser has a fresh profile in a temporary user data directory (the
// allocator makes it and removes it), so no cookie or session is shared.
// Background networking is off: the test talks to the host only.
func newChromium(t *testing.T, parent context.Context) *chromium {
	t.Helper()
	out := new(lockedBuffer)
	allocCtx, allocCancel := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.WindowSize(browserWidth, browserHeight),
		chromedp.CombinedOutput(out),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Close the browser gracefully, then make sure: the allocator's
		// cancel kills what is left and waits for it.
		closeCtx, closeCancel := context.WithTimeout(ctx, 10*time.Second)
		defer closeCancel()
		_ = chromedp.Cancel(closeCtx)
		cancel()
		allocCancel()
		if t.Failed() {
			t.Logf("Chromium's output:\n%s", out.String())
		}
	})
	// Start it now, so a browser that cannot start fails here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v\n%s", chromiumPath, err, out.String())
	}
	return &chromium{t: t, ctx: ctx}
}

// stepTimeout bounds one step in the browser.
const stepTimeout = 20 * time.Second

// navigate opens u and waits for the page it ends on; it returns the
// page's HTTP status.
func (b *chromium) navigate(u string) int64 {
	b.t.Helper()
	return b.load("open "+u, chromedp.Navigate(u))
}

// click clicks the element sel, which loads a page, and waits for it; it
// returns the page's HTTP status.
func (b *chromium) click(sel string) int64 {
	b.t.Helper()
	return b.load("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// load runs a step that loads a page and returns the page's status.
func (b *chromium) load(what string, step chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, step)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return resp.Status
}

// signIn fills the sign-in form the browser shows and clicks Sign in; it
// returns the status of the page it is sent back to.
func (b *chromium) signIn(user, password string) int64 {
	b.t.Helper()
	if p := b.read(); p.Title != "Sign in" {
		b.t.Fatalf("not the sign-in page: %+v", p)
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Clear(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
	)
	if err != nil {
		b.t.Fatalf("fill the sign-in form: %v", err)
	}
	return b.click(`main form button[type="submit"]`)
}

// browserPage is what the page in the browser shows, read from its DOM.
type browserPage struct {
	URL   string
	Title string // the heading
	// Binding is the approval page's binding message, Status a message
	// page's message.
	Binding, Status string
	// Fields are the page's description lists: each term with its
	// descriptions' text, one per line.
	Fields  map[string]string
	Buttons []string
	Text    string // all of the page's visible text
}

// readPageJS reads the page as a browserPage. It runs as the DevTools
// console does, so the page's Content-Security-Policy (no scripts) does
// not apply to it.
const readPageJS = `(() => {
	const text = (el) => el ? el.innerText.trim() : "";
	const fields = {};
	for (const dt of document.querySelectorAll("main dt")) {
		const values = [];
		for (let dd = dt.nextElementSibling; dd && dd.tagName === "DD"; dd = dd.nextElementSibling) {
			values.push(text(dd));
		}
		fields[text(dt)] = values.join("\n");
	}
	return {
		URL: document.location.href,
		Title: text(document.querySelector("main h1")),
		Binding: text(document.querySelector("main .binding")),
		Status: text(document.querySelector("main [role=status]")),
		Fields: fields,
		Buttons: [...document.querySelectorAll("main button")].map(text),
		Text: text(document.body),
	};
})()`

func (b *chromium) read() browserPage {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	p, err := chromedp.Run(ctx, chromedp.Evaluate[browserPage](readPageJS))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	return p
}

// screenshot takes a PNG of the page's card with some of the page around
// it, checks it, and with -update-screenshot writes it to
// docs/approval-page.png.
func (b *chromium) screenshot() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	shot, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		clip, err := chromedp.Evaluate[page.Viewport](fmt.Sprintf(`(() => {
			const m = %d, r = document.querySelector("main").getBoundingClientRect();
			const x = Math.max(0, Math.floor(r.left + scrollX - m)), y = Math.max(0, Math.floor(r.top + scrollY - m));
			return {x, y, width: Math.ceil(r.width + 2*m), height: Math.ceil(r.height + 2*m), scale: 1};
		})()`, screenshotMargin))(ctx, t)
		if err != nil {
			return nil, err
		}
		beyond := true
		res, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng, Clip: &clip, CaptureBeyondViewport: &beyond})
		return res.Data, err
	})
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		b.t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if size := img.Bounds().Size(); size.X < 400 || size.X > browserWidth || size.Y < 300 || size.Y > 3*browserHeight {
		b.t.Fatalf("the screenshot is %dx%d", size.X, size.Y)
	}
	if !*updateScreenshot && os.Getenv("AGENTHOST_UPDATE_SCREENSHOT") != "1" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(screenshotFile), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(screenshotFile, shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote docs/approval-page.png (%dx%d)", img.Bounds().Dx(), img.Bounds().Dy())
}

// lockedBuffer collects Chromium's output, written from the allocator's
// goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
