package wimse

// Structured Field Values for HTTP (RFC 8941): the Dictionary, Inner List,
// Item and Parameters this package reads in Signature-Input, Signature and
// Content-Digest, and the serialisation of an Inner List with its
// parameters for the @signature-params line of a signature base
// (RFC 9421 §2.3). The parser works on bytes with explicit bounds checks
// and no recursion, so arbitrary input cannot make it panic.
//
// Two deliberate departures from RFC 8941, both stricter: a Dictionary or
// Parameters with a repeated key is refused (RFC 8941 keeps the last
// value; two readers of a repeated created or nonce would disagree), and
// Date and Display String (RFC 9651) are not accepted.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits on what the parser accepts.
const (
	sfMaxInput   = 16 << 10
	sfMaxMembers = 64
	sfMaxItems   = 64
	sfMaxParams  = 32
)

var errSF = errors.New("malformed structured field")

// sfKind is the type of a bare item.
type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
)

// sfBare is a bare item. Decimals are kept as their canonical text so
// that serialising them needs no floating point.
type sfBare struct {
	kind  sfKind
	num   int64  // sfInteger
	text  string // sfDecimal (canonical), sfString, sfToken
	bytes []byte // sfBytes
	flag  bool   // sfBoolean
}

type sfParam struct {
	key   string
	value sfBare
}

type sfParams []sfParam

// get returns the parameter named key.
func (ps sfParams) get(key string) (sfBare, bool) {
	for _, p := range ps {
		if p.key == key {
			return p.value, true
		}
	}
	return sfBare{}, false
}

type sfItem struct {
	bare   sfBare
	params sfParams
}

// sfMember is a Dictionary member: an Item, or an Inner List when inner is
// set.
type sfMember struct {
	key    string
	inner  bool
	item   sfBare   // when !inner
	items  []sfItem // when inner
	params sfParams
}

type sfParser struct {
	s   string
	pos int
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSF, what, p.pos)
}

func (p *sfParser) eof() bool { return p.pos >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *sfParser) skipSP() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *sfParser) skipOWS() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// parseDictionary parses a Dictionary field value (RFC 8941 §4.2.2).
func parseDictionary(s string) ([]sfMember, error) {
	if len(s) > sfMaxInput {
		return nil, fmt.Errorf("%w: %d bytes", errSF, len(s))
	}
	p := &sfParser{s: s}
	p.skipSP()
	var out []sfMember
	seen := make(map[string]bool)
	for !p.eof() {
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, p.fail("repeated dictionary key " + strconv.Quote(key))
		}
		seen[key] = true
		if len(out) == sfMaxMembers {
			return nil, p.fail("too many dictionary members")
		}
		m := sfMember{key: key}
		if p.peek() == '=' {
			p.pos++
			if p.peek() == '(' {
				m.inner = true
				if m.items, err = p.parseInnerList(); err != nil {
					return nil, err
				}
			} else if m.item, err = p.parseBare(); err != nil {
				return nil, err
			}
		} else {
			m.item = sfBare{kind: sfBoolean, flag: true}
		}
		if m.params, err = p.parseParams(); err != nil {
			return nil, err
		}
		out = append(out, m)
		p.skipOWS()
		if p.eof() {
			return out, nil
		}
		if p.peek() != ',' {
			return nil, p.fail("expected ','")
		}
		p.pos++
		p.skipOWS()
		if p.eof() {
			return nil, p.fail("trailing ','")
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty dictionary", errSF)
	}
	return out, nil
}

// parseInnerList parses an Inner List without its parameters (RFC 8941
// §4.2.1.2); the caller reads those.
func (p *sfParser) parseInnerList() ([]sfItem, error) {
	p.pos++ // '('
	var items []sfItem
	for {
		p.skipSP()
		if p.eof() {
			return nil, p.fail("unterminated inner list")
		}
		if p.peek() == ')' {
			p.pos++
			return items, nil
		}
		if len(items) == sfMaxItems {
			return nil, p.fail("too many inner list items")
		}
		bare, err := p.parseBare()
		if err != nil {
			return nil, err
		}
		params, err := p.parseParams()
		if err != nil {
			return nil, err
		}
		items = append(items, sfItem{bare: bare, params: params})
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, p.fail("expected ' ' or ')' in inner list")
		}
	}
}

// parseParams parses Parameters (RFC 8941 §4.2.3.2).
func (p *sfParser) parseParams() (sfParams, error) {
	var ps sfParams
	for p.peek() == ';' {
		p.pos++
		p.skipSP()
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		if _, dup := ps.get(key); dup {
			return nil, p.fail("repeated parameter " + strconv.Quote(key))
		}
		if len(ps) == sfMaxParams {
			return nil, p.fail("too many parameters")
		}
		v := sfBare{kind: sfBoolean, flag: true}
		if p.peek() == '=' {
			p.pos++
			if v, err = p.parseBare(); err != nil {
				return nil, err
			}
		}
		ps = append(ps, sfParam{key: key, value: v})
	}
	return ps, nil
}

// parseKey parses a key: lcalpha or "*", then lcalpha, DIGIT, "_", "-",
// "." or "*" (RFC 8941 §4.2.3.3).
func (p *sfParser) parseKey() (string, error) {
	start := p.pos
	if c := p.peek(); !(c >= 'a' && c <= 'z') && c != '*' {
		return "", p.fail("expected key")
	}
	p.pos++
	for !p.eof() {
		c := p.s[p.pos]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '*' {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos], nil
}

// parseBare parses a Bare Item (RFC 8941 §4.2.3.1).
func (p *sfParser) parseBare() (sfBare, error) {
	c := p.peek()
	switch {
	case c == '-' || (c >= '0' && c <= '9'):
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case c == '*' || isAlpha(c):
		return p.parseToken()
	case c == ':':
		return p.parseBytes()
	case c == '?':
		return p.parseBoolean()
	}
	return sfBare{}, p.fail("expected an item")
}

// parseNumber parses an Integer or Decimal (RFC 8941 §4.2.4).
func (p *sfParser) parseNumber() (sfBare, error) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.pos++
	}
	start := p.pos
	for !p.eof() && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	intPart := p.s[start:p.pos]
	if intPart == "" {
		return sfBare{}, p.fail("expected a digit")
	}
	if p.peek() != '.' {
		if len(intPart) > 15 {
			return sfBare{}, p.fail("integer too long")
		}
		n, err := strconv.ParseInt(intPart, 10, 64)
		if err != nil {
			return sfBare{}, p.fail("bad integer")
		}
		if neg {
			n = -n
		}
		return sfBare{kind: sfInteger, num: n}, nil
	}
	if len(intPart) > 12 {
		return sfBare{}, p.fail("decimal too long")
	}
	p.pos++ // '.'
	fstart := p.pos
	for !p.eof() && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	frac := p.s[fstart:p.pos]
	if frac == "" || len(frac) > 3 {
		return sfBare{}, p.fail("decimal needs 1 to 3 fractional digits")
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		frac = "0"
	}
	text := intPart + "." + frac
	if neg && text != "0.0" {
		text = "-" + text
	}
	return sfBare{kind: sfDecimal, text: text}, nil
}

// parseString parses a String (RFC 8941 §4.2.5): printable ASCII, with
// only \" and \\ as escapes.
func (p *sfParser) parseString() (sfBare, error) {
	p.pos++ // '"'
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.pos]
		p.pos++
		switch {
		case c == '\\':
			if p.eof() {
				return sfBare{}, p.fail("unterminated escape")
			}
			n := p.s[p.pos]
			if n != '"' && n != '\\' {
				return sfBare{}, p.fail("bad escape")
			}
			b.WriteByte(n)
			p.pos++
		case c == '"':
			return sfBare{kind: sfString, text: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return sfBare{}, p.fail("non-printable character in string")
		default:
			b.WriteByte(c)
		}
	}
	return sfBare{}, p.fail("unterminated string")
}

// parseToken parses a Token (RFC 8941 §4.2.6).
func (p *sfParser) parseToken() (sfBare, error) {
	start := p.pos
	p.pos++
	for !p.eof() {
		c := p.s[p.pos]
		if isTchar(c) || c == ':' || c == '/' {
			p.pos++
			continue
		}
		break
	}
	return sfBare{kind: sfToken, text: p.s[start:p.pos]}, nil
}

// parseBytes parses a Byte Sequence (RFC 8941 §4.2.7). Padding may be
// omitted, as the RFC asks parsers to allow.
func (p *sfParser) parseBytes() (sfBare, error) {
	p.pos++ // ':'
	start := p.pos
	for !p.eof() && p.s[p.pos] != ':' {
		c := p.s[p.pos]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '/' && c != '=' {
			return sfBare{}, p.fail("bad byte sequence character")
		}
		p.pos++
	}
	if p.eof() {
		return sfBare{}, p.fail("unterminated byte sequence")
	}
	enc := p.s[start:p.pos]
	p.pos++ // ':'
	trimmed := strings.TrimRight(enc, "=")
	if strings.Contains(trimmed, "=") || len(enc)-len(trimmed) > 2 {
		return sfBare{}, p.fail("bad byte sequence padding")
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(trimmed)
	if err != nil {
		return sfBare{}, p.fail("bad byte sequence")
	}
	return sfBare{kind: sfBytes, bytes: b}, nil
}

// parseBoolean parses a Boolean (RFC 8941 §4.2.8).
func (p *sfParser) parseBoolean() (sfBare, error) {
	p.pos++ // '?'
	switch p.peek() {
	case '1':
		p.pos++
		return sfBare{kind: sfBoolean, flag: true}, nil
	case '0':
		p.pos++
		return sfBare{kind: sfBoolean, flag: false}, nil
	}
	return sfBare{}, p.fail("bad boolean")
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// isTchar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	if isAlpha(c) || (c >= '0' && c <= '9') {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken reports whether s is a non-empty RFC 9110 token, such as a
// header field name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// serializeBare appends the serialisation of a bare item (RFC 8941
// §4.1.3). Items come from the parser or from this package, so they are
// always serialisable.
func serializeBare(b *strings.Builder, v sfBare) {
	switch v.kind {
	case sfInteger:
		b.WriteString(strconv.FormatInt(v.num, 10))
	case sfDecimal, sfToken:
		b.WriteString(v.text)
	case sfString:
		b.WriteByte('"')
		for i := 0; i < len(v.text); i++ {
			if c := v.text[i]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v.text[i])
		}
		b.WriteByte('"')
	case sfBytes:
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(v.bytes))
		b.WriteByte(':')
	case sfBoolean:
		if v.flag {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	}
}

// serializeParams appends Parameters (RFC 8941 §4.1.1.2); a true Boolean
// is written as the bare key.
func serializeParams(b *strings.Builder, ps sfParams) {
	for _, p := range ps {
		b.WriteByte(';')
		b.WriteString(p.key)
		if p.value.kind == sfBoolean && p.value.flag {
			continue
		}
		b.WriteByte('=')
		serializeBare(b, p.value)
	}
}

// serializeInnerList returns the serialisation of an Inner List with its
// parameters (RFC 8941 §4.1.1.1): the @signature-params value.
func serializeInnerList(items []sfItem, params sfParams) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(' ')
		}
		serializeBare(&b, it.bare)
		serializeParams(&b, it.params)
	}
	b.WriteByte(')')
	serializeParams(&b, params)
	return b.String()
}

// sfStringItem is a String bare item.
func sfStringItem(s string) sfBare { return sfBare{kind: sfString, text: s} }

// sfIntItem is an Integer bare item.
func sfIntItem(n int64) sfBare { return sfBare{kind: sfInteger, num: n} }

// validSFString reports whether s can be serialised as a String.
func validSFString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
