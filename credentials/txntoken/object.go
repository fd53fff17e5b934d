package txntoken

import (
	"github.com/agenthost/agenthost/credentials/txntoken/canonjson"

	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Object is a JSON object claim, such as tctx or rctx, held in canonical
// form: members sorted by name, no whitespace, numbers by exact decimal
// value (see [ArgsDigest]). An Object is immutable, and two Objects holding
// the same members compare equal with ==, whatever key order, whitespace or
// number spelling they were parsed from; so [Claims] is comparable too.
//
// The zero Object is "no object": it marshals as null and a struct field
// tagged omitzero leaves it out.
type Object struct {
	canon string
}

// ParseObject parses data as one JSON object. Duplicate member names,
// invalid UTF-8, unpaired surrogate escapes and trailing data wrap
// [ErrInvalid].
func ParseObject(data []byte) (Object, error) {
	o, err := parseObject(data)
	if err != nil {
		return Object{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return o, nil
}

func parseObject(data []byte) (Object, error) {
	c, err := canonjson.Canonical(data)
	if err != nil {
		return Object{}, err
	}
	if len(c) == 0 || c[0] != '{' {
		return Object{}, errors.New("not a JSON object")
	}
	return Object{canon: string(c)}, nil
}

// NewObject returns the Object holding members, each encoded with
// encoding/json. A value json.Marshal cannot encode wraps [ErrInvalid].
func NewObject(members map[string]any) (Object, error) {
	if members == nil {
		members = map[string]any{}
	}
	b, err := json.Marshal(members)
	if err != nil {
		return Object{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return ParseObject(b)
}

// IsZero reports whether o is the zero Object (no object at all, as
// opposed to the empty object {}).
func (o Object) IsZero() bool { return o.canon == "" }

// String returns the canonical JSON text; "" for the zero Object.
func (o Object) String() string { return o.canon }

// Raw returns a copy of the canonical JSON text; nil for the zero Object.
func (o Object) Raw() json.RawMessage {
	if o.canon == "" {
		return nil
	}
	return json.RawMessage(o.canon)
}

// members decodes the canonical form. It cannot fail on an Object built by
// this package.
func (o Object) members() map[string]json.RawMessage {
	if o.canon == "" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(o.canon), &m); err != nil {
		return nil
	}
	return m
}

// Member returns the canonical JSON of the member name, and whether o has
// it.
func (o Object) Member(name string) (json.RawMessage, bool) {
	v, ok := o.members()[name]
	return v, ok
}

// Names returns the member names in sorted order.
func (o Object) Names() []string {
	m := o.members()
	if m == nil {
		return nil
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// With returns a copy of o with the given members set (added, or replaced
// when o has them); o itself is unchanged. On the zero Object it starts from
// {}. A Txn-Token service uses it to add asserted members to a replacement
// token's tctx ([CheckReplacement] refuses a changed one).
func (o Object) With(members map[string]any) (Object, error) {
	all := make(map[string]any, len(members))
	for n, v := range o.members() {
		all[n] = v
	}
	for n, v := range members {
		all[n] = v
	}
	return NewObject(all)
}

// MarshalJSON implements json.Marshaler: the canonical form, or null for
// the zero Object.
func (o Object) MarshalJSON() ([]byte, error) {
	if o.canon == "" {
		return []byte("null"), nil
	}
	return []byte(o.canon), nil
}

// UnmarshalJSON implements json.Unmarshaler like [ParseObject]; null gives
// the zero Object.
func (o *Object) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*o = Object{}
		return nil
	}
	p, err := ParseObject(data)
	if err != nil {
		return err
	}
	*o = p
	return nil
}
