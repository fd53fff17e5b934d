package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// sample exercises every kind of field the decoder supports.
type sample struct {
	Name   string            `json:"name"`
	Count  int               `json:"count"`
	Small  int8              `json:"small"`
	Size   uint16            `json:"size"`
	Ratio  float64           `json:"ratio"`
	On     bool              `json:"on"`
	Wait   time.Duration     `json:"wait"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
	Inner  *inner            `json:"inner"`
	Items  []inner           `json:"items"`
	Addr   Address           `json:"addr"`
	Keyed  map[LogLevel]int  `json:"keyed"`
	Raw    json.RawMessage   `json:"raw"`
	Hidden string            `json:"-"`
	NoTag  string
	embedded
}

type inner struct {
	Level LogLevel `json:"level"`
	N     int      `json:"n"`
}

type embedded struct {
	Extra string `json:"extra"`
}

// problem is the comparable summary of one decoding error.
type problem struct {
	Line int
	Path string
	Kind error
	Text string // a substring of the message
}

func decodeSample(t *testing.T, start sample, src string) (sample, Errors) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("test input is not YAML: %v", err)
	}
	d := newDecoder("t.yaml")
	d.decode(doc.Content[0], reflectValue(&start), "", 0)
	sortErrors(d.errs)
	return start, d.errs
}

func checkProblems(t *testing.T, got Errors, want []problem) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.Line || g.Path != w.Path || !errors.Is(g, w.Kind) || !strings.Contains(g.Message, w.Text) {
			t.Errorf("problem %d = %v (kind %v), want line %d path %q kind %v containing %q", i, g, g.Kind, w.Line, w.Path, w.Kind, w.Text)
		}
	}
}

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name  string
		start sample
		src   string
		want  sample
	}{
		{
			name: "every kind",
			src: `name: agent
count: -42
small: 0x7f
size: 65535
ratio: 2.5
on: true
wait: 1h30m
tags: [a, "b", 0755]
labels: {x: "1", y: two}
inner: {level: debug, n: 3}
items:
  - level: warn
  - n: 9
addr: "[::1]:8420"
keyed: {error: 1, info: 2}
raw: {b: 1, a: [true, null, "s", 1.5, 2024-01-01]}
NoTag: plain
extra: promoted
`,
			want: sample{
				Name: "agent", Count: -42, Small: 127, Size: 65535, Ratio: 2.5, On: true,
				Wait: 90 * time.Minute, Tags: []string{"a", "b", "0755"},
				Labels: map[string]string{"x": "1", "y": "two"},
				Inner:  &inner{Level: LevelDebug, N: 3},
				Items:  []inner{{Level: LevelWarn}, {N: 9}},
				Addr:   "[::1]:8420",
				Keyed:  map[LogLevel]int{LevelError: 1, LevelInfo: 2},
				Raw:    json.RawMessage(`{"a":[true,null,"s",1.5,"2024-01-01"],"b":1}`),
				NoTag:  "plain", embedded: embedded{Extra: "promoted"},
			},
		},
		{
			name:  "null keeps the starting value",
			start: sample{Name: "kept", Count: 7, Inner: &inner{N: 1}, Tags: []string{"t"}},
			src:   "name: ~\ncount:\ninner: null\ntags: ~\n",
			want:  sample{Name: "kept", Count: 7, Inner: &inner{N: 1}, Tags: []string{"t"}},
		},
		{
			name:  "given collections replace the starting value",
			start: sample{Tags: []string{"old"}, Labels: map[string]string{"old": "x"}},
			src:   "tags: [new]\nlabels: {new: y}\n",
			want:  sample{Tags: []string{"new"}, Labels: map[string]string{"new": "y"}},
		},
		{
			name:  "empty collections",
			start: sample{},
			src:   "tags: []\nlabels: {}\ninner: {}\n",
			want:  sample{Tags: []string{}, Labels: map[string]string{}, Inner: &inner{}},
		},
		{
			name: "aliases are followed",
			src:  "items: [&one {n: 1}, *one]\nname: &n agent\nextra: *n\n",
			want: sample{Items: []inner{{N: 1}, {N: 1}}, Name: "agent", embedded: embedded{Extra: "agent"}},
		},
		{
			name: "numbers and timestamps are text for strings",
			src:  "name: 12.50\nextra: 2024-01-01\n",
			want: sample{Name: "12.50", embedded: embedded{Extra: "2024-01-01"}},
		},
		{
			name: "integer for float",
			src:  "ratio: 3\n",
			want: sample{Ratio: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := decodeSample(t, tt.start, tt.src)
			if len(errs) > 0 {
				t.Fatalf("unexpected problems:\n%v", errs)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(sample{})); diff != "" {
				t.Errorf("decoded value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{
			name: "list where string expected",
			src:  "name: [a]\n",
			want: []problem{{1, "name", ErrType, "expected a string, got a list"}},
		},
		{
			name: "boolean where string expected",
			src:  "name: true\n",
			want: []problem{{1, "name", ErrType, "quote it"}},
		},
		{
			name: "string where integer expected",
			src:  "count: \"12\"\n",
			want: []problem{{1, "count", ErrType, `expected an integer, got the string "12"`}},
		},
		{
			name: "float where integer expected",
			src:  "count: 1.5\n",
			want: []problem{{1, "count", ErrType, "expected an integer"}},
		},
		{
			name: "integer overflow",
			src:  "small: 300\ncount: 99999999999999999999\n",
			want: []problem{
				{1, "small", ErrType, "out of range"},
				{2, "count", ErrType, "expected an integer"},
			},
		},
		{
			name: "negative unsigned",
			src:  "size: -1\n",
			want: []problem{{1, "size", ErrType, "non-negative"}},
		},
		{
			name: "non-finite float",
			src:  "ratio: .nan\n",
			want: []problem{{1, "ratio", ErrType, "finite"}},
		},
		{
			name: "string where boolean expected",
			src:  "on: yes\n",
			want: []problem{{1, "on", ErrType, `expected true or false, got the string "yes"`}},
		},
		{
			name: "duration without unit",
			src:  "wait: 10\n",
			want: []problem{{1, "wait", ErrType, "with a unit"}},
		},
		{
			name: "bad duration",
			src:  "wait: 1 hour\n",
			want: []problem{{1, "wait", ErrType, `invalid duration "1 hour"`}},
		},
		{
			name: "mapping where list expected",
			src:  "tags: {a: 1}\n",
			want: []problem{{1, "tags", ErrType, "expected a list, got a mapping"}},
		},
		{
			name: "list where map expected",
			src:  "labels: [x]\n",
			want: []problem{{1, "labels", ErrType, "expected a mapping, got a list"}},
		},
		{
			name: "scalar where struct expected",
			src:  "inner: 3\n",
			want: []problem{{1, "inner", ErrType, "expected a mapping, got the integer"}},
		},
		{
			name: "custom scalar rejects",
			src:  "addr: nope\n",
			want: []problem{{1, "addr", ErrType, "not host:port"}},
		},
		{
			name: "custom scalar given a mapping",
			src:  "addr: {a: b}\n",
			want: []problem{{1, "addr", ErrType, "expected a single value"}},
		},
		{
			name: "bad enum deep in a list",
			src:  "items:\n  - level: info\n  - level: loud\n",
			want: []problem{{3, "items[1].level", ErrType, `unknown log level "loud"`}},
		},
		{
			name: "bad enum as map key",
			src:  "keyed:\n  loud: 1\n",
			want: []problem{{2, "keyed.loud", ErrType, "unknown log level"}},
		},
		{
			name: "unknown keys at several depths",
			src:  "bogus: 1\ninner:\n  bogus: 2\nitems:\n  - n: 1\n    bogus: 3\nHidden: x\n",
			want: []problem{
				{1, "bogus", ErrUnknownKey, `unknown key "bogus"`},
				{3, "inner.bogus", ErrUnknownKey, `unknown key "bogus"`},
				{6, "items[0].bogus", ErrUnknownKey, `unknown key "bogus"`},
				{7, "Hidden", ErrUnknownKey, `unknown key "Hidden"`},
			},
		},
		{
			name: "unknown key suggestions",
			src:  "nmae: x\nNAME: y\n",
			want: []problem{
				{1, "nmae", ErrUnknownKey, `(did you mean "name"?)`},
				{2, "NAME", ErrUnknownKey, `(did you mean "name"?)`},
			},
		},
		{
			name: "odd keys are bracketed in paths",
			src:  "labels: {\"a.b\": x}\n\"we ird\": 1\n",
			want: []problem{{2, `["we ird"]`, ErrUnknownKey, "unknown key"}},
		},
		{
			name: "duplicate keys in struct, nested struct and map",
			src:  "name: a\ninner:\n  n: 1\n  n: 2\nlabels:\n  x: a\n  x: b\nname: b\n",
			want: []problem{
				{4, "inner.n", ErrDuplicateKey, "first given on line 3"},
				{7, "labels.x", ErrDuplicateKey, "first given on line 6"},
				{8, "name", ErrDuplicateKey, "first given on line 1"},
			},
		},
		{
			name: "merge keys are refused",
			src:  "inner:\n  <<: {n: 1}\n",
			want: []problem{{2, "inner", ErrType, "merge keys"}},
		},
		{
			name: "non-scalar and empty keys",
			src:  "? [a]\n: 1\n~: 2\n",
			want: []problem{
				{1, "", ErrType, "a key must be a plain string, got a list"},
				{3, "", ErrType, "a key must not be empty"},
			},
		},
		{
			name: "custom tags are refused",
			src:  "name: !secret x\n",
			want: []problem{{1, "name", ErrType, "unsupported tag !secret"}},
		},
		{
			name: "raw blocks check duplicates and numbers",
			src:  "raw:\n  a: 1\n  a: 2\n  b: .inf\n",
			want: []problem{
				{3, "raw.a", ErrDuplicateKey, "duplicate key"},
				{4, "raw.b", ErrType, "finite"},
			},
		},
		{
			name: "every problem is collected",
			src:  "name: [x]\ncount: x\nbogus: 1\nwait: 5\n",
			want: []problem{
				{1, "name", ErrType, "expected a string"},
				{2, "count", ErrType, "expected an integer"},
				{3, "bogus", ErrUnknownKey, "unknown key"},
				{4, "wait", ErrType, "duration"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeSample(t, sample{}, tt.src)
			checkProblems(t, errs, tt.want)
		})
	}
}

func TestDecodeLimits(t *testing.T) {
	// Each level doubles the tree: 2^30 leaves if aliases were expanded
	// without a budget.
	var bomb strings.Builder
	bomb.WriteString("a0: &a0 [x, x]\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [*a%d, *a%d]\n", i, i, i-1, i-1)
	}
	bomb.WriteString("raw: *a30\n")
	deep := "raw: " + strings.Repeat("[", maxDecodeDepth+5) + strings.Repeat("]", maxDecodeDepth+5) + "\n"

	tests := []struct {
		name string
		src  string
		text string
	}{
		{"alias expansion", bomb.String(), "too large"},
		{"nesting", deep, "nested more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
				t.Fatalf("test input is not YAML: %v", err)
			}
			// Decode only the raw key, so that the alias definitions are not
			// reported as unknown keys.
			root := doc.Content[0]
			var s sample
			d := newDecoder("t.yaml")
			d.decode(&yaml.Node{Kind: yaml.MappingNode, Content: root.Content[len(root.Content)-2:]}, reflectValue(&s), "", 0)
			if len(d.errs) == 0 {
				t.Fatal("no problem reported")
			}
			found := false
			for _, e := range d.errs {
				found = found || strings.Contains(e.Message, tt.text)
			}
			if !found {
				t.Errorf("problems %v do not mention %q", d.errs, tt.text)
			}
			if s.Raw != nil {
				t.Errorf("raw was set despite problems: %d bytes", len(s.Raw))
			}
		})
	}
}

func TestUnsupportedFieldTypes(t *testing.T) {
	type odd struct {
		Fn    func()         `json:"fn"`
		Ch    chan int       `json:"ch"`
		ByInt map[int]string `json:"by_int"`
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("fn: x\nch: 1\nby_int: {1: a}\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var o odd
	d := newDecoder("t.yaml")
	d.decode(doc.Content[0], reflectValue(&o), "", 0)
	checkProblems(t, d.errs, []problem{
		{1, "fn", ErrType, "cannot be configured"},
		{2, "ch", ErrType, "cannot be configured"},
		{3, "by_int", ErrType, "cannot be configured"},
	})
}

func TestStructFieldsShadowing(t *testing.T) {
	type a struct {
		Y string `json:"y"`
		Z string `json:"z"`
	}
	type outer struct {
		a
		Y string `json:"y"`
	}
	info := structFields(reflectType[outer]())
	// The outer y shadows the promoted a.y; z is promoted.
	if diff := cmp.Diff([]string{"y", "z"}, info.names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if got := info.fields["y"].index; len(got) != 1 || got[0] != 1 {
		t.Errorf("y index = %v, want [1]", got)
	}
	if got := info.fields["z"].index; len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Errorf("z index = %v, want [0 1]", got)
	}
}

// Ambiguous names are built with reflect.StructOf: written out, the struct
// would (rightly) fail go vet's duplicate tag check.
type EmbedA struct {
	X string `json:"x"`
	W string `json:"w"`
}

type EmbedB struct {
	X string `json:"x"`
}

func TestStructFieldsAmbiguous(t *testing.T) {
	outer := reflect.StructOf([]reflect.StructField{
		{Name: "EmbedA", Type: reflectType[EmbedA](), Anonymous: true},
		{Name: "EmbedB", Type: reflectType[EmbedB](), Anonymous: true},
	})
	info := structFields(outer)
	// x is given by two embedded structs at the same depth, so neither wins.
	if diff := cmp.Diff([]string{"w"}, info.names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	v := reflect.New(outer).Elem()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("x: 1\nw: 2\n"), &doc); err != nil {
		t.Fatal(err)
	}
	d := newDecoder("t.yaml")
	d.decode(doc.Content[0], v, "", 0)
	checkProblems(t, d.errs, []problem{{1, "x", ErrUnknownKey, "unknown key"}})
	if got := v.Field(0).Interface().(EmbedA).W; got != "2" {
		t.Errorf("w = %q, want 2", got)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Minute, "1m"},
		{90 * time.Second, "1m30s"},
		{720 * time.Hour, "720h"},
		{30 * time.Second, "30s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatDuration(tt.d); got != tt.want {
				t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func reflectValue[T any](p *T) reflect.Value { return reflect.ValueOf(p).Elem() }

func reflectType[T any]() reflect.Type { return reflect.TypeFor[T]() }
