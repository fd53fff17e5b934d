package cli

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// progressEvery is how often a progress line is redrawn.
const progressEvery = 100 * time.Millisecond

// progressWidth caps what a progress line says, in characters, so that
// the line stays on one row of a narrow terminal: a line that wraps could
// not be redrawn in place.
const progressWidth = 68

// spinnerFrames are the frames of the spinner at the start of a live line.
var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// progress keeps one live line at the bottom of a terminal while the CLI
// waits for something long (agents starting, a large audit log being
// verified): a spinner, what it waits for and the time elapsed, redrawn in
// place. Text written through [progress.writer] goes above the line. A
// progress that is off (its output is not a terminal, or the command
// prints JSON) draws nothing and passes writes through untouched.
type progress struct {
	on    bool
	w     io.Writer
	start time.Time

	mu   sync.Mutex
	text string
	// shown: the live line is on the screen; partial: a write left a
	// line unfinished, so the live line waits for its end.
	shown, partial, stopped bool
	frame                   int

	once  sync.Once
	done  chan struct{}
	ended chan struct{}
}

// newProgress starts a progress line on w saying text, drawn at once and
// then every progressEvery, when on is true.
func newProgress(w io.Writer, on bool, text string) *progress {
	p := &progress{on: on, w: w, start: time.Now(), text: text, done: make(chan struct{}), ended: make(chan struct{})}
	if !on {
		close(p.ended)
		return p
	}
	p.mu.Lock()
	p.drawLocked()
	p.mu.Unlock()
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.ended)
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			p.mu.Lock()
			p.drawLocked()
			p.mu.Unlock()
		case <-p.done:
			return
		}
	}
}

// set changes what the line says, and redraws it.
func (p *progress) set(text string) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.text = text
	p.drawLocked()
}

// drawLocked draws the live line in place of the one shown.
func (p *progress) drawLocked() {
	if p.stopped || p.partial {
		return
	}
	frame := spinnerFrames[p.frame%len(spinnerFrames)]
	p.frame++
	text := []rune(escapeControls(p.text))
	if len(text) > progressWidth {
		text = append(text[:progressWidth-1], '…')
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s (%.1fs)", frame, string(text), time.Since(p.start).Seconds())
	p.shown = true
}

// clearLocked removes the live line from the screen.
func (p *progress) clearLocked() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// stop removes the line for good; writes pass through from then on. It
// may be called more than once.
func (p *progress) stop() {
	if !p.on {
		return
	}
	p.once.Do(func() { close(p.done) })
	<-p.ended
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	p.stopped = true
}

// elapsed is the time since the progress started.
func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

// writer returns a writer to out (the terminal the line is on, or another
// writer to the same screen) whose writes go above the live line: the
// line is cleared before each write and drawn again once a line is
// complete.
func (p *progress) writer(out io.Writer) io.Writer {
	if !p.on {
		return out
	}
	return &progressWriter{p: p, w: out}
}

type progressWriter struct {
	p *progress
	w io.Writer
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	p := pw.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	n, err := pw.w.Write(b)
	if len(b) > 0 {
		p.partial = !bytes.HasSuffix(b, []byte("\n"))
	}
	p.drawLocked()
	return n, err
}
