package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth caps the nesting of arrays and objects in canonicalised JSON.
const maxDepth = 128

// Canonical returns the canonical form of one JSON value:
//
//   - no insignificant whitespace;
//   - object members sorted by name (byte order of the UTF-8 name);
//   - strings re-encoded by encoding/json without HTML escaping, so an
//     escaped and a literal character are the same;
//   - numbers by exact decimal value ([canonicalNumber]): 3, 3.0 and 3e0
//     are one value, no rounding to float64 happens.
//
// It refuses input that two readers could understand differently:
// invalid UTF-8, unpaired UTF-16 surrogate escapes, duplicate member names,
// trailing data, and nesting deeper than maxDepth.
func Canonical(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	if err := checkSurrogates(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var buf bytes.Buffer
	buf.Grow(len(data))
	if err := writeValue(dec, &buf, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return buf.Bytes(), nil
}

func writeValue(dec *json.Decoder, buf *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("unexpected end of JSON")
		}
		return fmt.Errorf("not JSON: %v", err)
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return fmt.Errorf("nested deeper than %d", maxDepth)
		}
		switch v {
		case '{':
			return writeObject(dec, buf, depth+1)
		case '[':
			return writeArray(dec, buf, depth+1)
		}
		return fmt.Errorf("unexpected %q", v)
	case string:
		return writeString(buf, v)
	case json.Number:
		n, err := canonicalNumber(string(v))
		if err != nil {
			return err
		}
		buf.WriteString(n)
	case bool:
		buf.WriteString(strconv.FormatBool(v))
	case nil:
		buf.WriteString("null")
	default:
		return fmt.Errorf("unexpected JSON token %T", tok)
	}
	return nil
}

type member struct {
	name  string
	value []byte
}

func writeObject(dec *json.Decoder, buf *bytes.Buffer, depth int) error {
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return errors.New("not JSON: bad member name")
		}
		var vb bytes.Buffer
		if err := writeValue(dec, &vb, depth); err != nil {
			return err
		}
		members = append(members, member{name, vb.Bytes()})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return fmt.Errorf("not JSON: %v", err)
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			if members[i-1].name == m.name {
				return fmt.Errorf("duplicate member %q", truncate(m.name))
			}
			buf.WriteByte(',')
		}
		if err := writeString(buf, m.name); err != nil {
			return err
		}
		buf.WriteByte(':')
		buf.Write(m.value)
	}
	buf.WriteByte('}')
	return nil
}

func writeArray(dec *json.Decoder, buf *bytes.Buffer, depth int) error {
	buf.WriteByte('[')
	for i := 0; dec.More(); i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeValue(dec, buf, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return fmt.Errorf("not JSON: %v", err)
	}
	buf.WriteByte(']')
	return nil
}

func writeString(buf *bytes.Buffer, s string) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	return nil
}

// checkSurrogates refuses a \u escape of a UTF-16 surrogate that is not
// half of a high-low pair. encoding/json would decode it as U+FFFD, so two
// different inputs would share one canonical form.
func checkSurrogates(data []byte) error {
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(data) {
				return nil // the decoder reports the syntax error
			}
			if data[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(data, i+2)
			if !ok {
				return nil
			}
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return errors.New("unpaired UTF-16 surrogate escape")
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
					return errors.New("unpaired UTF-16 surrogate escape")
				}
				lo, ok := hex4(data, i+3)
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return errors.New("unpaired UTF-16 surrogate escape")
				}
				i += 6
			}
		}
	}
	return nil
}

func hex4(data []byte, at int) (rune, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(data[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

// maxExponent bounds the decimal exponent canonicalNumber accepts, so a
// number such as 1e99999999999 cannot make the exponent arithmetic
// overflow.
const maxExponent = 1_000_000

// canonicalNumber returns the canonical text of the JSON number s (RFC 8259
// §6), by exact decimal value: no leading or trailing zeros, no "-0", plain
// digits while the value has at most 21 integer digits and at most 6
// leading zeros after the point, else d.ddde±N. So "3", "3.0", "3e0" and
// "0.3e1" all give "3", while 9007199254740993 keeps every digit.
func canonicalNumber(s string) (string, error) {
	bad := func() (string, error) { return "", fmt.Errorf("bad number %q", truncate(s)) }
	neg := strings.HasPrefix(s, "-")
	rest := strings.TrimPrefix(s, "-")
	mant, expPart := rest, ""
	if i := strings.IndexAny(rest, "eE"); i >= 0 {
		mant, expPart = rest[:i], rest[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
		if frac == "" || !allDigits(frac) {
			return bad()
		}
	}
	if intPart == "" || !allDigits(intPart) || (len(intPart) > 1 && intPart[0] == '0') {
		return bad()
	}
	exp := 0
	if i := strings.IndexAny(rest, "eE"); i >= 0 {
		e := strings.TrimPrefix(strings.TrimPrefix(expPart, "+"), "-")
		if e == "" || !allDigits(e) {
			return bad()
		}
		v, err := strconv.ParseInt(expPart, 10, 64)
		if err != nil || v > maxExponent || v < -maxExponent {
			return "", fmt.Errorf("number %q out of range", truncate(s))
		}
		exp = int(v)
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	exp -= len(frac)
	if digits == "" {
		return "0", nil
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	digits = trimmed

	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	point := len(digits) + exp // digits before the decimal point
	switch {
	case exp >= 0 && point <= 21:
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", exp))
	case exp < 0 && point > 0:
		b.WriteString(digits[:point])
		b.WriteByte('.')
		b.WriteString(digits[point:])
	case exp < 0 && point > -6:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -point))
		b.WriteString(digits)
	default:
		b.WriteByte(digits[0])
		if len(digits) > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		e := point - 1
		if e >= 0 {
			b.WriteString("e+")
		} else {
			b.WriteString("e-")
			e = -e
		}
		b.WriteString(strconv.Itoa(e))
	}
	return b.String(), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// truncate shortens a value taken from untrusted input before it goes into
// an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
