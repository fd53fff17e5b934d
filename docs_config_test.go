package agenthost_test

// TestDocsConfig keeps the configuration examples of the guides in docs/
// true. Every fenced block of docs/*.md whose info string is exactly "yaml"
// and whose first line is "version: 1" is a complete configuration file: it
// must decode and validate with runtime/config, as `agenthost validate`
// would. A block that starts otherwise is a fragment and is not checked.
//
// Validation checks that the files a configuration names exist (TLS
// certificates and keys, bundle files, agent binaries). Each block is
// parsed as agenthost.yaml in a directory of its own, where the test first
// creates the files the block names by relative path: an empty file for
// cert_file, key_file and ca_file, a JWK Set with a keys array for
// bundle_file, and an executable file for path (an agent or tool plugin
// binary). Nothing else is made up, so a block that names an absolute path,
// or a file of another kind, fails until the guide is changed. Problems are
// reported at the line of the guide they come from.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

// docsConfigGlob names the guides whose examples are checked.
const docsConfigGlob = "docs/*.md"

// docBlock is one ```yaml block of a guide.
type docBlock struct {
	// line is the guide's line number of the block's first content line.
	line int
	// text is the block's content, its fence's indentation removed.
	text string
}

// docFileKey finds the keys whose values name files that validation
// requires to exist, in block style ("key: value") and flow style
// ("{key: value, …}"); the value may be quoted.
var docFileKey = regexp.MustCompile(`(?:^|[\s{,-])(cert_file|key_file|ca_file|bundle_file|path)\s*:\s*("[^"]*"|'[^']*'|[^\s,}\]#]+)`)

func TestDocsConfig(t *testing.T) {
	guides, err := filepath.Glob(docsConfigGlob)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, guide := range guides {
		data, err := os.ReadFile(guide)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := docConfigBlocks(data)
		if err != nil {
			t.Errorf("%s:%v", guide, err)
			continue
		}
		for _, b := range blocks {
			checked++
			t.Run(filepath.Base(guide)+":"+strconv.Itoa(b.line), func(t *testing.T) {
				checkDocConfig(t, guide, b)
			})
		}
	}
	if checked == 0 {
		t.Fatalf("no ```yaml block starting with \"version: 1\" in %s", docsConfigGlob)
	}
	t.Logf("checked %d configuration examples", checked)
}

// checkDocConfig parses one block as a configuration file, with the files
// it names in place.
func checkDocConfig(t *testing.T, guide string, b docBlock) {
	t.Helper()
	dir := t.TempDir()
	if err := placeDocConfigFiles(dir, b.text); err != nil {
		t.Errorf("%s:%d: %v", guide, b.line, err)
		return
	}
	_, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(b.text))
	if err == nil {
		return
	}
	var problems config.Errors
	if !errors.As(err, &problems) {
		t.Errorf("%s:%d: %v", guide, b.line, err)
		return
	}
	for _, p := range problems {
		line := b.line
		if p.Line > 0 {
			line = b.line + p.Line - 1
		}
		msg := p.Message
		if p.Path != "" {
			msg = p.Path + ": " + msg
		}
		// The message may name the temporary directory; the guide's
		// reader knows the files by the names the block gives them.
		msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
		t.Errorf("%s:%d: %s", guide, line, msg)
	}
}

// placeDocConfigFiles creates, under dir, the files text names by
// relative path under the keys of docFileKey.
func placeDocConfigFiles(dir, text string) error {
	for _, m := range docFileKey.FindAllStringSubmatch(text, -1) {
		key, value := m[1], m[2]
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') {
			value = value[1 : len(value)-1]
		}
		if value == "" || filepath.IsAbs(value) {
			// Left to validation, which reports it if it is missing.
			continue
		}
		target := filepath.Join(dir, value)
		if rel, err := filepath.Rel(dir, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%s %q is outside the configuration file's directory; a guide's example names files beside it", key, value)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		content, mode := []byte("placeholder\n"), os.FileMode(0o600)
		switch key {
		case "bundle_file":
			// The form validation reads: a JWK Set with a keys array.
			content = []byte(`{"keys":[]}` + "\n")
		case "path":
			content, mode = []byte("#!/bin/sh\nexit 1\n"), 0o755
		}
		if err := os.WriteFile(target, content, mode); err != nil {
			return err
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
	}
	return nil
}

// docConfigBlocks returns the ```yaml blocks of a guide whose first line is
// "version: 1". An unterminated block is an error naming its line.
func docConfigBlocks(data []byte) ([]docBlock, error) {
	var (
		out     []docBlock
		inBlock bool
		isYAML  bool
		indent  string
		start   int
		body    []string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		if !inBlock {
			if rest, ok := strings.CutPrefix(trimmed, "```"); ok {
				inBlock, isYAML = true, strings.TrimSpace(rest) == "yaml"
				indent = line[:len(line)-len(trimmed)]
				start, body = n+1, nil
			}
			continue
		}
		if trimmed == "```" {
			inBlock = false
			if isYAML && len(body) > 0 && strings.TrimSpace(body[0]) == "version: 1" {
				out = append(out, docBlock{line: start, text: strings.Join(body, "\n") + "\n"})
			}
			continue
		}
		body = append(body, strings.TrimPrefix(line, indent))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if inBlock {
		return nil, fmt.Errorf("%d: the code block that starts here is never closed", start-1)
	}
	return out, nil
}
