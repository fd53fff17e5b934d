package llmoffline

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// schema is the subset of JSON Schema the argument filler reads.
type schema struct {
	Type        json.RawMessage    `json:"type"`
	Description string             `json:"description"`
	Format      string             `json:"format"`
	Properties  map[string]*schema `json:"properties"`
	Required    []string           `json:"required"`
	Enum        []json.RawMessage  `json:"enum"`
	Default     json.RawMessage    `json:"default"`
	Items       *schema            `json:"items"`
}

// typeName returns the schema's type, the first non-null one when it lists
// several; "" when none is given.
func (s *schema) typeName() string {
	if s == nil || len(s.Type) == 0 {
		return ""
	}
	var one string
	if json.Unmarshal(s.Type, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(s.Type, &many) == nil {
		for _, t := range many {
			if t != "null" {
				return t
			}
		}
	}
	return ""
}

// maxDepth bounds how deep nested object schemas are filled.
const maxDepth = 4

var (
	quotedRE = regexp.MustCompile("\"([^\"]+)\"|“([^”]+)”|`([^`]+)`")
	urlRE    = regexp.MustCompile(`https?://[^\s"'<>]+`)
	numberRE = regexp.MustCompile(`-?\d+(?:\.\d+)?`)
)

// filler fills one tool's arguments from the task text.
type filler struct {
	task     string
	relevant string
	quoted   []string
	numbers  []string
}

// newFiller prepares the task's values. The relevant text leaves out filler
// words, single letters, and the words in skip (the tool's name, its property
// names and enum values), which the call already expresses.
func newFiller(task string, skip map[string]bool) *filler {
	f := &filler{task: task}
	for _, m := range quotedRE.FindAllStringSubmatch(task, -1) {
		for _, g := range m[1:] {
			if g != "" {
				f.quoted = append(f.quoted, g)
			}
		}
	}
	f.numbers = numberRE.FindAllString(task, -1)
	var keep []string
	for _, t := range tokenize(task) {
		if stopwords[t.norm] || skip[t.norm] || (len([]rune(t.orig)) < 2 && !unicode.IsDigit([]rune(t.orig)[0])) {
			continue
		}
		keep = append(keep, t.orig)
	}
	f.relevant = strings.Join(keep, " ")
	if f.relevant == "" {
		f.relevant = strings.TrimSpace(task)
	}
	return f
}

// explicit finds "name: value" or "name=value" for the property name in the
// task; quoted values may contain spaces.
func (f *filler) explicit(name string) (string, bool) {
	re, err := regexp.Compile(`(?i)(?:^|[^\pL\pN_])` + regexp.QuoteMeta(name) + `\s*[:=]\s*(?:"([^"]*)"|'([^']*)'|(\S+))`)
	if err != nil {
		return "", false
	}
	m := re.FindStringSubmatch(f.task)
	if m == nil {
		return "", false
	}
	for _, g := range m[1:3] {
		if g != "" {
			return g, true
		}
	}
	v := strings.TrimRight(m[3], ".,;!?)")
	return v, v != ""
}

// object fills an object schema. Required properties are always present;
// optional ones only when the task gives them a value. When the schema
// requires no string property, its first string property (by name) gets the
// relevant text so the call still carries the task.
func (f *filler) object(s *schema, depth int) (map[string]any, error) {
	out := map[string]any{}
	if s == nil || depth > maxDepth {
		return out, nil
	}
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	// Required properties take quoted strings and numbers first.
	sort.SliceStable(names, func(i, j int) bool { return required[names[i]] && !required[names[j]] })

	needText := true
	for _, n := range names {
		if required[n] && s.Properties[n].typeName() == "string" {
			needText = false
		}
	}
	for _, n := range names {
		p := s.Properties[n]
		must := required[n]
		if !must && needText && p.typeName() == "string" && len(p.Enum) == 0 {
			must, needText = true, false
		}
		v, ok, err := f.value(n, p, must, depth)
		if err != nil {
			return nil, fmt.Errorf("property %q: %w", n, err)
		}
		if ok {
			out[n] = v
		}
	}
	// Required names without a declared property are still present.
	for _, r := range s.Required {
		if _, ok := out[r]; !ok {
			if v, found := f.explicit(r); found {
				out[r] = v
			} else {
				out[r] = f.relevant
			}
		}
	}
	return out, nil
}

// value fills one property. ok is false when an optional property has no
// value in the task.
func (f *filler) value(name string, p *schema, must bool, depth int) (any, bool, error) {
	if p == nil {
		p = &schema{}
	}
	raw, hasExplicit := f.explicit(name)
	if len(p.Enum) > 0 {
		return f.enum(p, raw, hasExplicit, must)
	}
	switch t := p.typeName(); t {
	case "string", "":
		switch {
		case hasExplicit:
			return raw, true, nil
		case wantsURL(name, p) && urlRE.MatchString(f.task):
			return strings.TrimRight(urlRE.FindString(f.task), ".,;!?)"), true, nil
		case len(f.quoted) > 0:
			v := f.quoted[0]
			f.quoted = f.quoted[1:]
			return v, true, nil
		case !must:
			return nil, false, nil
		case len(p.Default) > 0:
			return p.Default, true, nil
		}
		return f.relevant, true, nil
	case "integer", "number":
		src := raw
		if !hasExplicit {
			if !must {
				return nil, false, nil
			}
			if len(p.Default) > 0 {
				return p.Default, true, nil
			}
			if len(f.numbers) == 0 {
				return 0, true, nil
			}
			src = f.numbers[0]
			f.numbers = f.numbers[1:]
		}
		if t == "integer" {
			if fl, err := strconv.ParseFloat(src, 64); err == nil && fl >= -1e15 && fl <= 1e15 {
				return int64(fl), true, nil
			}
		} else if fl, err := strconv.ParseFloat(src, 64); err == nil {
			return fl, true, nil
		}
		if must {
			return 0, true, nil
		}
		return nil, false, nil
	case "boolean":
		if hasExplicit {
			switch strings.ToLower(raw) {
			case "true", "yes", "on", "1":
				return true, true, nil
			case "false", "no", "off", "0":
				return false, true, nil
			}
		}
		if !must {
			return nil, false, nil
		}
		if len(p.Default) > 0 {
			return p.Default, true, nil
		}
		return false, true, nil
	case "array":
		if !must && !hasExplicit {
			return nil, false, nil
		}
		if hasExplicit && (p.Items == nil || p.Items.typeName() == "string" || p.Items.typeName() == "") {
			var items []any
			for _, part := range strings.Split(raw, ",") {
				if part = strings.TrimSpace(part); part != "" {
					items = append(items, part)
				}
			}
			return items, true, nil
		}
		item, _, err := f.value(name, p.Items, true, depth+1)
		if err != nil {
			return nil, false, err
		}
		return []any{item}, true, nil
	case "object":
		if !must {
			return nil, false, nil
		}
		v, err := f.object(p, depth+1)
		return v, true, err
	case "null":
		if !must {
			return nil, false, nil
		}
		return nil, true, nil
	default:
		return nil, false, fmt.Errorf("unsupported schema type %q", t)
	}
}

// enum picks the explicit value when it is allowed, else the first allowed
// value the task mentions, else (when required) the first allowed value.
func (f *filler) enum(p *schema, raw string, hasExplicit, must bool) (any, bool, error) {
	words := contentWords(f.task)
	lower := strings.ToLower(f.task)
	for _, e := range p.Enum {
		var s string
		if json.Unmarshal(e, &s) != nil {
			if hasExplicit && string(e) == raw {
				return e, true, nil
			}
			continue
		}
		if hasExplicit && strings.EqualFold(s, raw) {
			return s, true, nil
		}
	}
	for _, e := range p.Enum {
		var s string
		if json.Unmarshal(e, &s) != nil || s == "" {
			continue
		}
		ws := contentWords(s)
		hit := len(ws) > 0
		for w := range ws {
			if !words[w] {
				hit = false
			}
		}
		if hit || (len(ws) == 0 && strings.Contains(lower, strings.ToLower(s))) {
			return s, true, nil
		}
	}
	if !must {
		return nil, false, nil
	}
	if len(p.Default) > 0 {
		return p.Default, true, nil
	}
	return p.Enum[0], true, nil
}

func wantsURL(name string, p *schema) bool {
	n := strings.ToLower(name)
	return p.Format == "uri" || p.Format == "url" || strings.Contains(n, "url") || strings.Contains(n, "uri") || strings.Contains(n, "link")
}

// schemaWords returns the words of the top-level property names and string
// enum values of s.
func schemaWords(s *schema) map[string]bool {
	out := map[string]bool{}
	for name, p := range s.Properties {
		for w := range contentWords(name) {
			out[w] = true
		}
		if p == nil {
			continue
		}
		for _, e := range p.Enum {
			var v string
			if json.Unmarshal(e, &v) == nil {
				for w := range contentWords(v) {
					out[w] = true
				}
			}
		}
	}
	return out
}
