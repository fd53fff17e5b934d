package config

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits that keep a hostile file from exhausting the decoder: aliases can
// make a small document expand into a huge tree.
const (
	maxDecodeNodes = 100_000
	maxDecodeDepth = 64
)

// Resolved YAML tags.
const (
	tagStr       = "!!str"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagBool      = "!!bool"
	tagNull      = "!!null"
	tagTimestamp = "!!timestamp"
	tagBinary    = "!!binary"
	tagMerge     = "!!merge"
)

var (
	scalarUnmarshalerType = reflect.TypeFor[ScalarUnmarshaler]()
	durationType          = reflect.TypeFor[time.Duration]()
	rawMessageType        = reflect.TypeFor[json.RawMessage]()
)

// decoder walks a YAML node tree against a Go value, collecting every
// problem instead of stopping at the first, and remembering where each key
// path was written.
type decoder struct {
	file     string
	errs     Errors
	pos      map[string]Position
	nodes    int
	tooLarge bool
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: make(map[string]Position)}
}

func (d *decoder) add(n *yaml.Node, path string, kind error, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Message: fmt.Sprintf(format, args...), Kind: kind}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// resolve follows alias nodes to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDecodeDepth; i++ {
		n = n.Alias
	}
	return n
}

// mark records where path was written: at the key for collections and empty
// values, at the value for scalars.
func (d *decoder) mark(path string, key, val *yaml.Node) {
	at := val
	if t := resolve(val); key != nil && (t == nil || t.Kind != yaml.ScalarNode || t.ShortTag() == tagNull) {
		at = key
	}
	d.pos[path] = Position{Line: at.Line, Column: at.Column}
}

// decode stores the YAML node n into v, reporting problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if d.tooLarge {
		return
	}
	d.nodes++
	if d.nodes > maxDecodeNodes {
		d.tooLarge = true
		d.add(n, path, ErrInvalid, "document is too large: more than %d values after alias expansion", maxDecodeNodes)
		return
	}
	if depth > maxDecodeDepth {
		d.add(n, path, ErrInvalid, "document is nested more than %d levels deep", maxDecodeDepth)
		return
	}
	target := resolve(n)
	if target == nil || target.Kind == yaml.AliasNode {
		d.add(n, path, ErrSyntax, "alias does not name a value")
		return
	}
	d.decodeValue(n, target, v, path, depth)
}

// decodeValue decodes the alias-free node n into v; at is the node errors
// point at (the alias itself when n was reached through one).
func (d *decoder) decodeValue(at, n *yaml.Node, v reflect.Value, path string, depth int) {
	tag := n.ShortTag()
	if n.Kind == yaml.ScalarNode && tag == tagNull {
		// Null means "not given": the field keeps its default.
		return
	}
	if !strings.HasPrefix(tag, "!!") {
		d.add(at, path, ErrType, "unsupported tag %s", tag)
		return
	}
	t := v.Type()
	if v.CanAddr() && reflect.PointerTo(t).Implements(scalarUnmarshalerType) {
		if !d.wantScalar(at, n, path, "a single value") {
			return
		}
		if err := v.Addr().Interface().(ScalarUnmarshaler).UnmarshalConfigScalar(n.Value); err != nil {
			d.add(at, path, ErrType, "%v", err)
		}
		return
	}
	switch t {
	case durationType:
		d.decodeDuration(at, n, v, path)
		return
	case rawMessageType:
		val, ok := d.jsonValue(at, n, path, depth)
		if !ok {
			return
		}
		b, err := json.Marshal(val)
		if err != nil {
			d.add(at, path, ErrType, "cannot encode as JSON: %v", err)
			return
		}
		v.SetBytes(b)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decodeValue(at, n, v.Elem(), path, depth+1)
	case reflect.Struct:
		if d.want(at, n, path, yaml.MappingNode) {
			d.decodeStruct(n, v, path, depth)
		}
	case reflect.Map:
		if d.want(at, n, path, yaml.MappingNode) {
			d.decodeMap(at, n, v, path, depth)
		}
	case reflect.Slice:
		if d.want(at, n, path, yaml.SequenceNode) {
			s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
			for i, item := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				d.mark(p, nil, item)
				d.decode(item, s.Index(i), p, depth+1)
			}
			v.Set(s)
		}
	case reflect.String:
		d.decodeString(at, n, v, path)
	case reflect.Bool:
		if !d.wantScalar(at, n, path, "true or false") {
			return
		}
		var b bool
		if tag != tagBool || n.Decode(&b) != nil {
			d.add(at, path, ErrType, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !d.wantScalar(at, n, path, "an integer") {
			return
		}
		var i int64
		if tag != tagInt {
			d.add(at, path, ErrType, "expected an integer, got %s", describe(n))
			return
		}
		if n.Decode(&i) != nil || v.OverflowInt(i) {
			d.add(at, path, ErrType, "integer %s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !d.wantScalar(at, n, path, "a non-negative integer") {
			return
		}
		var u uint64
		if tag != tagInt {
			d.add(at, path, ErrType, "expected a non-negative integer, got %s", describe(n))
			return
		}
		if strings.HasPrefix(n.Value, "-") {
			d.add(at, path, ErrType, "expected a non-negative integer, got %s", n.Value)
			return
		}
		if n.Decode(&u) != nil || v.OverflowUint(u) {
			d.add(at, path, ErrType, "integer %s is out of range", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if !d.wantScalar(at, n, path, "a number") {
			return
		}
		var f float64
		if (tag != tagFloat && tag != tagInt) || n.Decode(&f) != nil {
			d.add(at, path, ErrType, "expected a number, got %s", describe(n))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || v.OverflowFloat(f) {
			d.add(at, path, ErrType, "number %s is out of range; want a finite number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.add(at, path, ErrType, "fields of type %s cannot be configured", t)
	}
}

// want reports whether n has the wanted kind, recording a problem if not.
func (d *decoder) want(at, n *yaml.Node, path string, kind yaml.Kind) bool {
	if n.Kind == kind {
		return true
	}
	what := "a mapping"
	if kind == yaml.SequenceNode {
		what = "a list"
	}
	d.add(at, path, ErrType, "expected %s, got %s", what, describe(n))
	return false
}

func (d *decoder) wantScalar(at, n *yaml.Node, path, what string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	d.add(at, path, ErrType, "expected %s, got %s", what, describe(n))
	return false
}

// decodeString accepts any scalar written as text, including numbers and
// timestamps (kept exactly as written), but not booleans: `name: yes` is a
// string in YAML 1.2 anyway, and `name: true` is more likely a mistake.
func (d *decoder) decodeString(at, n *yaml.Node, v reflect.Value, path string) {
	if !d.wantScalar(at, n, path, "a string") {
		return
	}
	switch n.ShortTag() {
	case tagStr, tagInt, tagFloat, tagTimestamp:
		v.SetString(n.Value)
	case tagBool:
		d.add(at, path, ErrType, "expected a string, got %s; quote it if you mean the text", describe(n))
	default:
		d.add(at, path, ErrType, "expected a string, got %s", describe(n))
	}
}

func (d *decoder) decodeDuration(at, n *yaml.Node, v reflect.Value, path string) {
	const want = `a duration with a unit, such as "90s", "30m" or "1h"`
	if !d.wantScalar(at, n, path, want) {
		return
	}
	if n.ShortTag() != tagStr {
		d.add(at, path, ErrType, "expected %s, got %s", want, describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.add(at, path, ErrType, "invalid duration %s; want %s", quoteValue(n.Value), want)
		return
	}
	v.SetInt(int64(dur))
}

// keyText returns the text of a mapping key, reporting keys that are not
// plain scalars.
func (d *decoder) keyText(k *yaml.Node, parent string) (string, bool) {
	kn := resolve(k)
	if kn == nil || kn.Kind != yaml.ScalarNode {
		got := "an alias to nothing"
		if kn != nil {
			got = describe(kn)
		}
		d.add(k, parent, ErrType, "a key must be a plain string, got %s", got)
		return "", false
	}
	switch kn.ShortTag() {
	case tagMerge:
		d.add(k, parent, ErrType, "merge keys (<<) are not supported; write the keys out")
		return "", false
	case tagNull:
		d.add(k, parent, ErrType, "a key must not be empty")
		return "", false
	}
	return kn.Value, true
}

// duplicate reports a key already seen in the same mapping.
func (d *decoder) duplicate(seen map[string]*yaml.Node, k *yaml.Node, name, path string) bool {
	if first, ok := seen[name]; ok {
		d.add(k, path, ErrDuplicateKey, "duplicate key %s (first given on line %d)", quoteValue(name), first.Line)
		return true
	}
	seen[name] = k
	return false
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	info := structFields(v.Type())
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name, ok := d.keyText(k, path)
		if !ok {
			continue
		}
		child := childPath(path, name)
		if d.duplicate(seen, k, name, child) {
			continue
		}
		f, ok := info.fields[name]
		if !ok {
			if msg, refused := refusedKey(v.Type(), name); refused {
				d.add(k, child, ErrInvalid, "%s", msg)
				continue
			}
			msg := "unknown key " + quoteValue(name)
			if s := suggest(name, info.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.add(k, child, ErrUnknownKey, "%s", msg)
			continue
		}
		d.mark(child, k, val)
		d.decode(val, v.FieldByIndex(f.index), child, depth+1)
	}
}

// keyRefuser is implemented by structs that refuse some keys with a
// specific message rather than as unknown keys (a plaintext secret, for
// example).
type keyRefuser interface {
	refuseKey(name string) (message string, refused bool)
}

var keyRefuserType = reflect.TypeFor[keyRefuser]()

// refusedKey reports whether struct type t refuses key name, and why.
func refusedKey(t reflect.Type, name string) (string, bool) {
	if !reflect.PointerTo(t).Implements(keyRefuserType) {
		return "", false
	}
	return reflect.New(t).Interface().(keyRefuser).refuseKey(name)
}

func (d *decoder) decodeMap(at, n *yaml.Node, v reflect.Value, path string, depth int) {
	t := v.Type()
	kt := t.Key()
	keyParser := reflect.PointerTo(kt).Implements(scalarUnmarshalerType)
	if kt.Kind() != reflect.String && !keyParser {
		d.add(at, path, ErrType, "maps keyed by %s cannot be configured", kt)
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name, ok := d.keyText(k, path)
		if !ok {
			continue
		}
		child := childPath(path, name)
		if d.duplicate(seen, k, name, child) {
			continue
		}
		kv := reflect.New(kt).Elem()
		if keyParser {
			if err := kv.Addr().Interface().(ScalarUnmarshaler).UnmarshalConfigScalar(name); err != nil {
				d.add(k, child, ErrType, "%v", err)
				continue
			}
		} else {
			kv.SetString(name)
		}
		d.mark(child, k, val)
		ev := reflect.New(t.Elem()).Elem()
		d.decode(val, ev, child, depth+1)
		m.SetMapIndex(kv, ev)
	}
	v.Set(m)
}

// jsonValue converts a YAML subtree to the value encoding/json would produce
// for the equivalent JSON document, for blocks kept raw.
func (d *decoder) jsonValue(at, n *yaml.Node, path string, depth int) (any, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		seen := make(map[string]*yaml.Node, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			name, kok := d.keyText(k, path)
			if !kok {
				ok = false
				continue
			}
			child := childPath(path, name)
			if d.duplicate(seen, k, name, child) {
				ok = false
				continue
			}
			cv, cok := d.jsonChild(val, child, depth)
			ok = ok && cok
			out[name] = cv
		}
		return out, ok
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		ok := true
		for i, item := range n.Content {
			cv, cok := d.jsonChild(item, path+"["+strconv.Itoa(i)+"]", depth)
			ok = ok && cok
			out[i] = cv
		}
		return out, ok
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case tagNull:
			return nil, true
		case tagBool:
			var b bool
			if n.Decode(&b) != nil {
				d.add(at, path, ErrType, "invalid boolean %s", quoteValue(n.Value))
				return nil, false
			}
			return b, true
		case tagInt:
			var i int64
			if n.Decode(&i) == nil {
				return json.Number(strconv.FormatInt(i, 10)), true
			}
			var u uint64
			if n.Decode(&u) == nil {
				return json.Number(strconv.FormatUint(u, 10)), true
			}
			d.add(at, path, ErrType, "integer %s is out of range", n.Value)
			return nil, false
		case tagFloat:
			var f float64
			if n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.add(at, path, ErrType, "number %s is out of range; want a finite number", n.Value)
				return nil, false
			}
			return f, true
		case tagStr, tagTimestamp, tagBinary:
			return n.Value, true
		default:
			d.add(at, path, ErrType, "unsupported tag %s", tag)
			return nil, false
		}
	}
	d.add(at, path, ErrType, "unsupported YAML node")
	return nil, false
}

func (d *decoder) jsonChild(n *yaml.Node, path string, depth int) (any, bool) {
	if d.tooLarge {
		return nil, false
	}
	d.nodes++
	if d.nodes > maxDecodeNodes {
		d.tooLarge = true
		d.add(n, path, ErrInvalid, "document is too large: more than %d values after alias expansion", maxDecodeNodes)
		return nil, false
	}
	if depth+1 > maxDecodeDepth {
		d.add(n, path, ErrInvalid, "document is nested more than %d levels deep", maxDecodeDepth)
		return nil, false
	}
	target := resolve(n)
	if target == nil || target.Kind == yaml.AliasNode {
		d.add(n, path, ErrSyntax, "alias does not name a value")
		return nil, false
	}
	return d.jsonValue(n, target, path, depth+1)
}

// describe names the kind and value of a node for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case tagStr:
			return "the string " + quoteValue(n.Value)
		case tagInt:
			return "the integer " + quoteValue(n.Value)
		case tagFloat:
			return "the number " + quoteValue(n.Value)
		case tagBool:
			return "the boolean " + quoteValue(n.Value)
		case tagNull:
			return "null"
		case tagTimestamp:
			return "the timestamp " + quoteValue(n.Value)
		default:
			return "a value tagged " + tag
		}
	}
	return "an unsupported YAML node"
}

// childPath appends a key to a dotted key path. Keys that are not simple
// identifiers are written in brackets: clients["a.b"].
func childPath(parent, key string) string {
	if !simpleKey(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func simpleKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// suggest returns the known key closest to an unknown one, if it is close
// enough to be a likely typo.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
		if dist := editDistance(name, k); dist < bestDist && dist < len(k) {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

type structField struct {
	index []int
	depth int
}

type structInfo struct {
	fields map[string]structField
	names  []string
}

var structCache sync.Map // reflect.Type → *structInfo

// structFields maps the json names of a struct's fields to their indexes,
// following encoding/json: untagged fields use the Go name, "-" is skipped,
// fields of untagged embedded structs are promoted, and the shallowest of
// several fields with one name wins (two at the same depth cancel out).
func structFields(t reflect.Type) *structInfo {
	if v, ok := structCache.Load(t); ok {
		return v.(*structInfo)
	}
	cands := make(map[string][]structField)
	var walk func(t reflect.Type, index []int, depth int)
	walk = func(t reflect.Type, index []int, depth int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), index...), i)
			if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
				if depth < maxDecodeDepth {
					walk(sf.Type, idx, depth+1)
				}
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			cands[name] = append(cands[name], structField{index: idx, depth: depth})
		}
	}
	walk(t, nil, 0)
	info := &structInfo{fields: make(map[string]structField, len(cands))}
	for name, cs := range cands {
		best, count := cs[0], 0
		for _, c := range cs {
			switch {
			case c.depth < best.depth:
				best, count = c, 1
			case c.depth == best.depth:
				count++
			}
		}
		if count == 1 {
			info.fields[name] = best
			info.names = append(info.names, name)
		}
	}
	sort.Strings(info.names)
	v, _ := structCache.LoadOrStore(t, info)
	return v.(*structInfo)
}
