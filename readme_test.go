package agenthost_test

// These tests keep README.md true: its commands are run as written against a
// real host, its Commands table is checked against the CLI's own help, its
// Guides list links every guide of docs/, and its tables must not be broken.
// (docs_test.go does the same for the guides, with the same harness, and
// checks the links of the README and the guides.)
//
// How README.md marks its code blocks:
//
//   - A fenced block whose info string is exactly "sh" is run, unless its
//     first line is "# not run: REASON" (below). Its blocks run
//     in README order, section by section, against one host the test starts
//     the way `make run` does: `./bin/agenthost up --config
//     examples/quickstart/agenthost.yaml` with ./.agenthost as the data
//     directory, and the commands start once /readyz answers 200. They run in
//     a temporary directory that holds `bin` and `examples` (links to the
//     repository's) and nothing else, so ./bin/agenthost, examples/… and
//     ./.agenthost resolve as they do at the repository root. The only change
//     is the quickstart's address: 127.0.0.1:8420 becomes a free port in the
//     config copy, in the commands and in their promised output.
//   - Each line of such a block is one command, run with `bash -c` in that
//     directory with empty standard input; a line ending in \ continues on
//     the next. A line that starts by assigning a variable (NAME=…) sets it
//     for the lines after it, as in one shell session.
//   - A line starting with # is a comment, except that comment lines directly
//     under a command that start with # and three spaces ("#   ") are output
//     the command promises: each must appear within one line of its standard
//     output or standard error, where … stands for any text.
//   - A # comment after a command is for the reader, with one exception:
//     "(exit N)" in it means the command must exit with status N. Every other
//     command must exit 0.
//   - `make TARGET` lines are not run (make test runs these tests, and the
//     host they start is make run's); the Makefile must have the target.
//   - A sh block that cannot run here (it needs a browser, a model's API
//     key, another machine or a config the quickstart does not have) starts
//     with the line "# not run: REASON", REASON saying what it needs; the
//     test logs it, and a marker without a reason fails
//     TestREADMECodeBlocks. Its commands still write ./bin/agenthost. The
//     guides in docs/ mark their blocks the same way.
//   - Output is "text", configuration "yaml" or "json". A block with another
//     info string, or none, fails TestREADMECodeBlocks, so every block is run
//     or deliberately marked.
//
// The tests use the binaries make build leaves in bin/ and build nothing;
// they need bash and curl.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	readmeFile = "README.md"
	// quickstartConfig is the config make run starts the host on.
	quickstartConfig = "examples/quickstart/agenthost.yaml"
	// quickstartAddr is the quickstart's listen address, as the README
	// writes it.
	quickstartAddr = "127.0.0.1:8420"
	// outputPrefix starts a comment line that is promised output.
	outputPrefix = "#   "
	// commandTimeout bounds one README command; `run` waits up to 30s for
	// an agent that is starting.
	commandTimeout = 60 * time.Second
)

// blockKinds are the info strings a README code block may have, and
// whether the test runs it (a sh block unless it is marked "# not run").
var blockKinds = map[string]bool{
	"sh":   true,
	"text": false,
	"yaml": false,
	"json": false,
}

// readmeBlock is one fenced code block of the README.
type readmeBlock struct {
	section string // the "## " heading it is under
	info    string
	line    int // README line of the opening fence
	indent  int // spaces before the opening fence
	lines   []readmeLine
}

type readmeLine struct {
	n    int // README line number
	text string
}

// readmeDoc is the README split into lines, code blocks and sections.
type readmeDoc struct {
	lines  []string
	blocks []readmeBlock
	// inBlock marks the lines inside a fenced block (fences included).
	inBlock []bool
}

func loadREADME(t *testing.T) *readmeDoc {
	t.Helper()
	b, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseREADME(string(b))
	if err != nil {
		t.Fatalf("%s: %v", readmeFile, err)
	}
	return doc
}

func parseREADME(s string) (*readmeDoc, error) {
	doc := &readmeDoc{lines: strings.Split(s, "\n")}
	doc.inBlock = make([]bool, len(doc.lines))
	section := ""
	var cur *readmeBlock
	for i, l := range doc.lines {
		n := i + 1
		if cur != nil {
			doc.inBlock[i] = true
			if strings.TrimSpace(l) == "```" {
				doc.blocks = append(doc.blocks, *cur)
				cur = nil
				continue
			}
			// A block indented under a list item: its lines lose the
			// fence's indentation (CommonMark).
			for k := 0; k < cur.indent && strings.HasPrefix(l, " "); k++ {
				l = l[1:]
			}
			cur.lines = append(cur.lines, readmeLine{n, l})
			continue
		}
		if strings.HasPrefix(l, "## ") {
			section = strings.TrimSpace(l[3:])
		}
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			doc.inBlock[i] = true
			cur = &readmeBlock{
				section: section,
				info:    strings.TrimSpace(strings.TrimSpace(l)[3:]),
				line:    n,
				indent:  len(l) - len(strings.TrimLeft(l, " ")),
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: code block never closed", cur.line)
	}
	return doc, nil
}

// readmeCommand is one command of a runnable block.
type readmeCommand struct {
	line   int    // README line where it starts
	text   string // as written, continuation lines included
	exit   int    // the exit status it must have
	assign string // the variable it sets, if it is an assignment
	make   string // the make target, if it is a make command
	want   []string
}

var (
	exitNote   = regexp.MustCompile(`\(exit (\d+)\)`)
	assignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=`)
	makeLine   = regexp.MustCompile(`^make +([A-Za-z0-9_-]+)`)
	// bareAgenthost is agenthost run as a command from PATH.
	bareAgenthost = regexp.MustCompile(`(?:^|[|;&(]|\$\()\s*agenthost\s`)
)

// commands parses a runnable block by the convention at the top of this file.
func (b readmeBlock) commands() ([]readmeCommand, error) {
	var (
		cmds []readmeCommand
		// open is true while the lines after a command may still be its
		// promised output.
		open bool
	)
	for i := 0; i < len(b.lines); i++ {
		l := b.lines[i]
		trimmed := strings.TrimSpace(l.text)
		switch {
		case trimmed == "":
			open = false
		case strings.HasPrefix(l.text, outputPrefix):
			if !open {
				return nil, fmt.Errorf("line %d: promised output (%q) not directly under a command", l.n, outputPrefix)
			}
			want := strings.TrimRight(l.text[len(outputPrefix):], " \t")
			if strings.TrimSpace(want) == "" || strings.Trim(want, " …") == "" {
				return nil, fmt.Errorf("line %d: promised output that matches anything", l.n)
			}
			cmds[len(cmds)-1].want = append(cmds[len(cmds)-1].want, want)
		case strings.HasPrefix(trimmed, "#"):
			open = false
		default:
			c := readmeCommand{line: l.n, text: l.text}
			for strings.HasSuffix(c.text, `\`) {
				if i+1 == len(b.lines) {
					return nil, fmt.Errorf("line %d: the block ends inside a continued command", l.n)
				}
				i++
				c.text += "\n" + b.lines[i].text
			}
			if comment, ok := shellComment(strings.ReplaceAll(c.text, "\\\n", " ")); ok {
				if m := exitNote.FindStringSubmatch(comment); m != nil {
					c.exit, _ = strconv.Atoi(m[1])
				}
			}
			if m := assignment.FindStringSubmatch(c.text); m != nil {
				c.assign = m[1]
			}
			if m := makeLine.FindStringSubmatch(c.text); m != nil {
				c.make = m[1]
			}
			cmds = append(cmds, c)
			open = true
		}
	}
	return cmds, nil
}

// shellComment returns the comment that ends a shell command line: text from
// a # that starts a word outside quotes.
func shellComment(s string) (string, bool) {
	var quote rune
	prev := ' '
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return s[i+1:], true
		}
		prev = r
	}
	return "", false
}

// outputPattern compiles a promised output line: literal text, … for any
// text within the line.
func outputPattern(want string) *regexp.Regexp {
	parts := strings.Split(want, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?m)` + strings.Join(parts, `[^\n]*`))
}

func TestShellComment(t *testing.T) {
	tests := []struct {
		line    string
		comment string
		ok      bool
	}{
		{`curl -s 127.0.0.1:8420/healthz   # the host serves`, " the host serves", true},
		{`./bin/agenthost run a "b # c"`, "", false},
		{`echo 'x # y' # z (exit 1)`, " z (exit 1)", true},
		{`curl 'http://h/p#frag'`, "", false},
		{`echo a#b`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, ok := shellComment(tt.line)
			if got != tt.comment || ok != tt.ok {
				t.Errorf("shellComment = %q, %v; want %q, %v", got, ok, tt.comment, tt.ok)
			}
		})
	}
}

func TestReadmeBlockCommands(t *testing.T) {
	tests := []struct {
		name    string
		block   string
		want    []readmeCommand
		wantErr bool
	}{
		{
			name:  "output, exit status and comments",
			block: "a --x   # the (exit 2) case\n#   out…put\n#   more\n# a note\nb\n",
			want: []readmeCommand{
				{line: 1, text: "a --x   # the (exit 2) case", exit: 2, want: []string{"out…put", "more"}},
				{line: 5, text: "b"},
			},
		},
		{
			name:  "assignment, make and continuation",
			block: "K=$(x | y)   # the key\nmake test\nc \\\n  d\n#   ok",
			want: []readmeCommand{
				{line: 1, text: "K=$(x | y)   # the key", assign: "K"},
				{line: 2, text: "make test", make: "test"},
				{line: 3, text: "c \\\n  d", want: []string{"ok"}},
			},
		},
		{name: "output after a plain comment", block: "a\n# note\n#   out", wantErr: true},
		{name: "output after a blank line", block: "a\n\n#   out", wantErr: true},
		{name: "output first", block: "#   out\na", wantErr: true},
		{name: "output that matches anything", block: "a\n#   …", wantErr: true},
		{name: "continued past the end", block: "a \\", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b readmeBlock
			for i, l := range strings.Split(strings.TrimSuffix(tt.block, "\n"), "\n") {
				b.lines = append(b.lines, readmeLine{i + 1, l})
			}
			got, err := b.commands()
			if (err != nil) != tt.wantErr {
				t.Fatalf("commands() error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("commands() = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.line != w.line || g.text != w.text || g.exit != w.exit || g.assign != w.assign ||
					g.make != w.make || !slices.Equal(g.want, w.want) {
					t.Errorf("command %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestOutputPattern(t *testing.T) {
	tests := []struct {
		want, output string
		match        bool
	}{
		{`{"status":"ready",…}`, "{\"status\":\"ready\",\"agents\":3}\n", true},
		{`task task-… (trace: …)`, "x\ntask task-9f (trace: agenthost audit trace task-9f)\n", true},
		{`a … b`, "a\nb\n", false},
		{`x.y`, "xzy\n", false},
		{`needle`, "hay\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := outputPattern(tt.want).MatchString(tt.output); got != tt.match {
				t.Errorf("match of %q in %q = %v, want %v", tt.want, tt.output, got, tt.match)
			}
		})
	}
}

// TestREADMECodeBlocks checks that every code block is run or marked, that
// every runnable block parses, and that its make targets exist.
func TestREADMECodeBlocks(t *testing.T) {
	doc := loadREADME(t)
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	runnable := 0
	for _, b := range doc.blocks {
		run, ok := blockKinds[b.info]
		if !ok {
			t.Errorf("%s:%d: code block with info string %q: use sh (run by this test; its first line %q REASON when it cannot be), text, yaml or json",
				readmeFile, b.line, b.info, notRunPrefix)
			continue
		}
		if !run {
			continue
		}
		if reason, ok := notRun(b); ok {
			if reason == "" {
				t.Errorf("%s:%d: %q without a reason: say what the commands need that the test cannot give", readmeFile, b.line, notRunPrefix)
			}
			for _, l := range b.lines {
				if !strings.HasPrefix(strings.TrimSpace(l.text), "#") && bareAgenthost.MatchString(l.text) {
					t.Errorf("%s:%d: %q: write ./bin/agenthost, as every command of the README does", readmeFile, l.n, l.text)
				}
			}
			continue
		}
		cmds, err := b.commands()
		if err != nil {
			t.Errorf("%s:%d: %v", readmeFile, b.line, err)
			continue
		}
		for _, c := range cmds {
			runnable++
			if c.make != "" && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(c.make)+`:`).Match(makefile) {
				t.Errorf("%s:%d: %q: the Makefile has no target %s", readmeFile, c.line, c.text, c.make)
			}
			if bareAgenthost.MatchString(c.text) {
				t.Errorf("%s:%d: %q: write ./bin/agenthost (make run does not put bin/ on PATH)", readmeFile, c.line, c.text)
			}
		}
	}
	if runnable == 0 {
		t.Fatalf("%s: no runnable commands found", readmeFile)
	}
}

// TestREADMETables fails on a Markdown table broken by a blank line: the
// rows after it would render as text. (TestDocsTables checks the guides.)
func TestREADMETables(t *testing.T) {
	checkTables(t, readmeFile, loadREADME(t))
}

// checkTables reports every blank line of doc, read from file, that
// breaks a table in two.
func checkTables(t *testing.T, file string, doc *readmeDoc) {
	t.Helper()
	isRow := func(i int) bool {
		return i >= 0 && i < len(doc.lines) && !doc.inBlock[i] && strings.HasPrefix(doc.lines[i], "|")
	}
	isSeparator := func(i int) bool {
		return isRow(i) && strings.Trim(doc.lines[i], "|-: ") == ""
	}
	for i, l := range doc.lines {
		if strings.TrimSpace(l) == "" && isRow(i-1) && isRow(i+1) && !isSeparator(i+2) {
			t.Errorf("%s:%d: blank line inside a table (the rows after it are not part of it)", file, i+1)
		}
	}
}

// TestREADMEGuides checks that the README's Guides list links every guide
// in docs/, so that none is left where no reader finds it.
func TestREADMEGuides(t *testing.T) {
	doc := loadREADME(t)
	linked := map[string]bool{}
	in := false
	for i, l := range doc.lines {
		if strings.HasPrefix(l, "## ") {
			in = strings.TrimSpace(l[3:]) == "Guides"
			continue
		}
		if !in || doc.inBlock[i] {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
			target, _, _ := strings.Cut(m[2], "#")
			linked[filepath.Clean(target)] = true
		}
	}
	if len(linked) == 0 {
		t.Fatalf("%s: no link under \"## Guides\"", readmeFile)
	}
	files, err := filepath.Glob(docsGlob)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !linked[f] {
			t.Errorf("%s: the Guides list has no link to %s", readmeFile, f)
		}
	}
}

// cliHelp is what `agenthost PATH --help` says about a command.
type cliHelp struct {
	usage string
	flags map[string]bool
	subs  []string
}

var helpFlag = regexp.MustCompile(`^\s+(?:(-[A-Za-z]), )?(--[a-z0-9-]+)`)

func readHelp(t *testing.T, path []string) (cliHelp, error) {
	t.Helper()
	out, err := exec.Command("./bin/agenthost", append(slices.Clone(path), "--help")...).CombinedOutput()
	if err != nil {
		return cliHelp{}, fmt.Errorf("agenthost %s --help: %v\n%s", strings.Join(path, " "), err, out)
	}
	h := cliHelp{flags: map[string]bool{}}
	var part string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if l != "" && !strings.HasPrefix(l, " ") {
			part = l
			continue
		}
		switch part {
		case "Usage:":
			if h.usage == "" {
				h.usage = strings.TrimSpace(l)
			}
		case "Flags:", "Global Flags:":
			if m := helpFlag.FindStringSubmatch(l); m != nil {
				h.flags[m[2]] = true
				if m[1] != "" {
					h.flags[m[1]] = true
				}
			}
		case "Available Commands:":
			if f := strings.Fields(l); len(f) > 0 && f[0] != "help" {
				h.subs = append(h.subs, f[0])
			}
		}
	}
	return h, nil
}

var (
	codeSpan     = regexp.MustCompile("`([^`]+)`")
	templateFlag = regexp.MustCompile(`(?:^|[\s\[{|])(--?[A-Za-z][A-Za-z0-9-]*)`)
	commandWord  = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// TestREADMECommandsTable checks the Commands table against the CLI: every
// command a row names exists, every flag it names is one of that command's,
// and every command of the CLI has a row.
func TestREADMECommandsTable(t *testing.T) {
	requireBinaries(t)
	doc := loadREADME(t)
	rows := commandsTable(t, doc)
	documented := map[string]bool{}
	helps := map[string]cliHelp{}
	help := func(path []string) (cliHelp, error) {
		key := strings.Join(path, " ")
		if h, ok := helps[key]; ok {
			return h, nil
		}
		h, err := readHelp(t, path)
		if err == nil {
			helps[key] = h
		}
		return h, err
	}
	for _, r := range rows {
		cells := splitRow(r.text)
		if len(cells) < 2 {
			t.Errorf("%s:%d: not a two-column row", readmeFile, r.n)
			continue
		}
		var (
			parent   []string
			rowFlags = map[string]bool{}
		)
		for i, span := range codeSpan.FindAllStringSubmatch(cells[0], -1) {
			tmpl := strings.ReplaceAll(span[1], `\|`, "|")
			words := strings.Fields(tmpl)
			switch {
			case len(words) > 0 && words[0] == "agenthost":
				words = words[1:]
			case i == 0:
				t.Errorf("%s:%d: %q: a row starts with `agenthost …`", readmeFile, r.n, tmpl)
				continue
			default:
				// `export [--from I]` after `agenthost audit tail`: a
				// sibling of the row's first command.
				words = append(slices.Clone(parent), words...)
			}
			var path []string
			for _, w := range words {
				if !commandWord.MatchString(w) {
					break
				}
				path = append(path, w)
			}
			if len(path) == 0 {
				t.Errorf("%s:%d: %q names no command", readmeFile, r.n, tmpl)
				continue
			}
			if i == 0 {
				parent = path[:len(path)-1]
			}
			h, err := help(path)
			if err != nil {
				t.Errorf("%s:%d: %q: %v", readmeFile, r.n, tmpl, err)
				continue
			}
			name := "agenthost " + strings.Join(path, " ")
			if h.usage != name && !strings.HasPrefix(h.usage, name+" ") {
				t.Errorf("%s:%d: %q: no command %q (its help's usage is %q)", readmeFile, r.n, tmpl, name, h.usage)
				continue
			}
			documented[strings.Join(path, " ")] = true
			for _, m := range templateFlag.FindAllStringSubmatch(tmpl, -1) {
				if !h.flags[m[1]] {
					t.Errorf("%s:%d: %q: %s has no flag %s", readmeFile, r.n, tmpl, name, m[1])
				}
			}
			for f := range h.flags {
				rowFlags[f] = true
			}
		}
		// A flag the description names (a code span starting with it)
		// is a flag of one of the row's commands.
		for _, span := range codeSpan.FindAllStringSubmatch(strings.Join(cells[1:], "|"), -1) {
			if m := regexp.MustCompile(`^(--?[A-Za-z][A-Za-z0-9-]*)`).FindStringSubmatch(span[1]); m != nil && !rowFlags[m[1]] {
				t.Errorf("%s:%d: the description names %s, which none of the row's commands has", readmeFile, r.n, m[1])
			}
		}
	}
	// Every command the CLI has is in the table (leaves: a command with
	// subcommands is documented through them).
	var walk func(path []string)
	walk = func(path []string) {
		h, err := help(path)
		if err != nil {
			t.Error(err)
			return
		}
		if len(h.subs) == 0 {
			if !documented[strings.Join(path, " ")] {
				t.Errorf("%s: the Commands table has no row for agenthost %s", readmeFile, strings.Join(path, " "))
			}
			return
		}
		for _, s := range h.subs {
			walk(append(slices.Clone(path), s))
		}
	}
	walk(nil)
	if len(documented) == 0 {
		t.Fatal("no command of the Commands table was checked")
	}
}

// commandsTable returns the body rows of the first table under "## Commands".
func commandsTable(t *testing.T, doc *readmeDoc) []readmeLine {
	t.Helper()
	var rows []readmeLine
	in := false
	for i, l := range doc.lines {
		if strings.HasPrefix(l, "## ") {
			if in {
				break
			}
			in = strings.TrimSpace(l[3:]) == "Commands"
			continue
		}
		if !in || doc.inBlock[i] {
			continue
		}
		if strings.HasPrefix(l, "|") {
			rows = append(rows, readmeLine{i + 1, l})
			continue
		}
		if len(rows) > 0 {
			break
		}
	}
	if len(rows) < 3 {
		t.Fatalf("%s: no table under \"## Commands\"", readmeFile)
	}
	return rows[2:] // header and separator
}

// splitRow splits a table row into its cells at every | not escaped as \|.
func splitRow(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	var (
		cells []string
		cur   strings.Builder
	)
	for i := 0; i < len(row); i++ {
		if row[i] == '\\' && i+1 < len(row) && row[i+1] == '|' {
			cur.WriteString(`\|`)
			i++
			continue
		}
		if row[i] == '|' {
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteByte(row[i])
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// requireBinaries fails the test when make build has not been run.
func requireBinaries(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bin/agenthost", "bin/agents", "bin/toolplugins"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make build` first (make test does): %v", p, err)
		}
	}
}

// syncBuffer collects a process's output for a test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requireShellTools fails t where bash or curl, which the documents'
// commands use, is missing; whose names what needs them.
func requireShellTools(t *testing.T, whose string) {
	t.Helper()
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s need %s: install it (e.g. apt-get install %s)", whose, tool, tool)
		}
	}
}

// TestREADMECommands runs every command of the README's sh blocks against a
// host started as make run starts it (see the convention at the top).
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a host and runs the README's commands; run without -short to include it")
	}
	requireBinaries(t)
	requireShellTools(t, "the README's commands")
	doc := loadREADME(t)
	repo, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	work := readmeWorkDir(t, repo, addr)
	startReadmeHost(t, work, addr)

	sh := newShellSession(work, func(s string) string { return strings.ReplaceAll(s, quickstartAddr, addr) })
	var sections []string
	bySection := map[string][]readmeBlock{}
	for _, b := range doc.blocks {
		if !blockKinds[b.info] {
			continue
		}
		if _, ok := bySection[b.section]; !ok {
			sections = append(sections, b.section)
		}
		bySection[b.section] = append(bySection[b.section], b)
	}
	for _, section := range sections {
		t.Run(section, func(t *testing.T) {
			for _, b := range bySection[section] {
				sh.runBlock(t, readmeFile, b)
			}
		})
	}
	if sh.ran == 0 {
		t.Fatalf("%s: no command was run", readmeFile)
	}
}

// shellSession runs the sh blocks of one document in order, as one shell
// session would: each command in work, a variable a NAME=… line sets kept
// for the commands after it, and the quickstart's addresses rewritten by
// rewrite in the commands and in their promised output. TestREADMECommands
// runs the README in one session, TestDocsCommands each guide in its own.
type shellSession struct {
	work    string
	env     []string
	rewrite func(string) string
	ran     int // commands run
}

func newShellSession(work string, rewrite func(string) string) *shellSession {
	return &shellSession{work: work, env: os.Environ(), rewrite: rewrite}
}

// runBlock runs the commands of b, a sh block of file. A block marked
// "# not run: REASON" is logged with its reason and not run; a make line is
// logged and not run (the code blocks' tests check its target).
func (s *shellSession) runBlock(t *testing.T, file string, b readmeBlock) {
	t.Helper()
	if reason, ok := notRun(b); ok {
		t.Logf("%s:%d: block not run: %s", file, b.line, reason)
		return
	}
	cmds, err := b.commands()
	if err != nil {
		t.Fatalf("%s:%d: %v", file, b.line, err)
	}
	for _, c := range cmds {
		if c.make != "" {
			t.Logf("%s:%d: %s: not run (the code blocks' test checks the Makefile's target)", file, c.line, c.text)
			continue
		}
		s.ran++
		out, value := runReadmeCommand(t, file, s.work, s.env, c, s.rewrite(c.text), s.rewrite)
		if c.assign != "" {
			if value == "" {
				t.Errorf("%s:%d: %s\nsets %s to nothing; output:\n%s", file, c.line, c.text, c.assign, out)
			}
			s.env = append(s.env, c.assign+"="+value)
		}
	}
}

// runReadmeCommand runs one command of file (README.md, or a guide under
// docs/) in work and checks its exit status and promised output. It
// returns the command's output (stdout and stderr together) and, for an
// assignment, the value it set.
func runReadmeCommand(t *testing.T, file, work string, env []string, c readmeCommand, text string, rewrite func(string) string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var out, value syncBuffer
	cmd := exec.CommandContext(ctx, "bash", "-c", text)
	cmd.Dir = work
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	if c.assign != "" {
		// An assignment writes nothing on stdout: the value is printed
		// there once the line has run.
		cmd.Args[2] = text + "\nstatus=$?; printf '%s' \"$" + c.assign + "\"; exit $status"
		cmd.Stdout = &value
	}
	start := time.Now()
	err := cmd.Run()
	status := 0
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Errorf("%s:%d: %s\ndid not finish within %v; output:\n%s", file, c.line, c.text, commandTimeout, out.String())
		return out.String(), ""
	case err == nil:
	case errors.As(err, &exitErr):
		status = exitErr.ExitCode()
	default:
		t.Errorf("%s:%d: %s\n%v", file, c.line, c.text, err)
		return out.String(), ""
	}
	t.Logf("%s:%d: %s (exit %d, %v)", file, c.line, text, status, time.Since(start).Round(time.Millisecond))
	if status != c.exit {
		t.Errorf("%s:%d: %s\nexit status %d, %s says %d; output:\n%s", file, c.line, c.text, status, file, c.exit, out.String())
	}
	for _, want := range c.want {
		if !outputPattern(rewrite(want)).MatchString(out.String()) {
			t.Errorf("%s:%d: %s\noutput has no line with %q; output:\n%s", file, c.line, c.text, rewrite(want), out.String())
		}
	}
	return out.String(), value.String()
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port nothing listens
// on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// readmeWorkDir makes the directory the README's commands run in: bin and
// examples as at the repository root, the quickstart config a copy listening
// on addr. Every other file of examples/ is a link to the repository's.
func readmeWorkDir(t *testing.T, repo, addr string) string {
	t.Helper()
	work := t.TempDir()
	link := func(rel string) {
		if err := os.Symlink(filepath.Join(repo, rel), filepath.Join(work, rel)); err != nil {
			t.Fatal(err)
		}
	}
	link("bin")
	qs := filepath.Dir(quickstartConfig)
	if err := os.MkdirAll(filepath.Join(work, qs), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"examples", qs} {
		ents, err := os.ReadDir(filepath.Join(repo, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			rel := filepath.Join(dir, e.Name())
			if rel != qs && rel != filepath.FromSlash(quickstartConfig) {
				link(rel)
			}
		}
	}
	cfg, err := os.ReadFile(filepath.Join(repo, quickstartConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(quickstartAddr)) {
		t.Fatalf("%s does not listen on %s, which the README's commands use", quickstartConfig, quickstartAddr)
	}
	cfg = bytes.ReplaceAll(cfg, []byte(quickstartAddr), []byte(addr))
	if err := os.WriteFile(filepath.Join(work, quickstartConfig), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return work
}

// startReadmeHost starts the host as make run does, in work, and waits until
// it is ready. At the end of the test it sends SIGTERM and requires a clean
// exit.
func startReadmeHost(t *testing.T, work, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	startHost(t, work, quickstartConfig, func() bool {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startHost starts ./bin/agenthost up --config config in work (its data
// directory ./.agenthost there) and waits, up to 60s, until ready reports
// true. At the end of the test it sends SIGTERM and requires a clean exit.
// It skips the test when the host cannot start because the strict sandbox
// is not available here.
func startHost(t *testing.T, work, config string, ready func() bool) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command("./bin/agenthost", "up", "--config", config)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return // it stopped early, which was reported
		default:
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM to the host: %v", err)
		}
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("host exited with %v after SIGTERM; its output:\n%s", waitErr, out.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("host still running 15s after SIGTERM (the README says it stops within 5s); killed. Its output:\n%s", out.String())
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			if strings.Contains(out.String(), "sandbox: not supported here") {
				t.Skipf("strict sandbox not available here, and the quickstart host needs it; enable unprivileged user namespaces to run this test. Host output:\n%s", out.String())
			}
			t.Fatalf("host exited before it was ready (%v); its output:\n%s", waitErr, out.String())
		default:
		}
		if ready() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host not ready within 60s; its output:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
