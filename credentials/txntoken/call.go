package txntoken

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/credentials/txntoken/canonjson"
)

// Members of tctx that bind a Txn-Token to one tool call. agenthost's
// mediator writes them with [CallContext]; a tool checks them with
// [Claims.CheckCall]. The tool's declared business fields (say "amount")
// sit beside them as top-level members of tctx, so a replacement token may
// add members but never change one ([CheckReplacement]):
//
//	"tctx": {
//	  "tool": "payments/transfer",
//	  "args_sha256": "<hex SHA-256 of the canonical arguments>",
//	  "amount": 3
//	}
const (
	// MemberTool holds the tool's name as the host knows it.
	MemberTool = "tool"
	// MemberArgsSHA256 holds [ArgsDigest] of the call's arguments.
	MemberArgsSHA256 = "args_sha256"
)

// ArgsDigest returns the lowercase hex SHA-256 of the canonical form of the
// JSON value args, so two spellings of the same arguments share a digest
// and any other change does not. Empty args (a call without arguments)
// count as {}.
//
// The canonical form is agenthost's own (it is not RFC 8785): whitespace
// dropped; object members sorted by name, byte-wise; strings re-encoded,
// so "\u00e9" and "é" are the same; numbers by exact decimal value, so 3,
// 3.0 and 3e0 are the same while 3 and 30, or 9007199254740993 and
// 9007199254740992, are not (no float64 rounding). Input two JSON readers
// could disagree about wraps [ErrInvalid]: duplicate member names, invalid
// UTF-8, unpaired surrogate escapes, trailing data, nesting beyond 128.
func ArgsDigest(args json.RawMessage) (string, error) {
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	c, err := canonjson.Canonical(args)
	if err != nil {
		return "", fmt.Errorf("%w: arguments: %v", ErrInvalid, err)
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// CallContext returns the tctx binding a Txn-Token to one call of tool
// with args: the tool name, [ArgsDigest] of args, and the tool's declared
// business fields (may be nil). A field named like one of the binding
// members, an empty tool name, or arguments ArgsDigest refuses wrap
// [ErrInvalid].
func CallContext(tool string, args json.RawMessage, fields map[string]any) (Object, error) {
	if tool == "" {
		return Object{}, fmt.Errorf("%w: no tool name", ErrInvalid)
	}
	m := make(map[string]any, len(fields)+2)
	for name, v := range fields {
		if name == MemberTool || name == MemberArgsSHA256 {
			return Object{}, fmt.Errorf("%w: field name %q is reserved", ErrInvalid, name)
		}
		m[name] = v
	}
	d, err := ArgsDigest(args)
	if err != nil {
		return Object{}, err
	}
	m[MemberTool] = tool
	m[MemberArgsSHA256] = d
	return NewObject(m)
}

// CheckCall reports whether c was issued for this call: tctx's tool member
// must equal tool and its args_sha256 member must equal [ArgsDigest] of
// args. A mismatch, or a tctx without these members, wraps
// [ErrCallMismatch]; args ArgsDigest refuses wrap [ErrInvalid].
func (c *Claims) CheckCall(tool string, args json.RawMessage) error {
	d, err := ArgsDigest(args)
	if err != nil {
		return err
	}
	if c.TransactionContext.IsZero() {
		return fmt.Errorf("%w: the token has no tctx", ErrCallMismatch)
	}
	got, err := c.stringMember(MemberTool)
	if err != nil {
		return err
	}
	if got != tool {
		return fmt.Errorf("%w: the token is for tool %q, the call is to %q", ErrCallMismatch, truncate(got), truncate(tool))
	}
	if got, err = c.stringMember(MemberArgsSHA256); err != nil {
		return err
	}
	if got != d {
		return fmt.Errorf("%w: the arguments differ from the ones the token was issued for", ErrCallMismatch)
	}
	return nil
}

// CheckField reports whether tctx's member name holds value, a business
// field the tool declared (say "amount"). Both sides are compared in
// canonical form (see [ArgsDigest]), so 3, 3.0 and json.Number("3.00")
// match a stored 3, while "3" (a string) or 30 do not. A missing member or
// another value wraps [ErrCallMismatch]; a value encoding/json cannot
// encode wraps [ErrInvalid].
func (c *Claims) CheckField(name string, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("%w: field %q: %v", ErrInvalid, truncate(name), err)
	}
	want, err := canonjson.Canonical(b)
	if err != nil {
		return fmt.Errorf("%w: field %q: %v", ErrInvalid, truncate(name), err)
	}
	got, ok := c.TransactionContext.Member(name)
	if !ok {
		return fmt.Errorf("%w: tctx has no member %q", ErrCallMismatch, truncate(name))
	}
	if string(got) != string(want) {
		return fmt.Errorf("%w: tctx member %q differs", ErrCallMismatch, truncate(name))
	}
	return nil
}

func (c *Claims) stringMember(name string) (string, error) {
	raw, ok := c.TransactionContext.Member(name)
	if !ok {
		return "", fmt.Errorf("%w: tctx has no %s member", ErrCallMismatch, name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: tctx member %s is not a string", ErrCallMismatch, name)
	}
	return s, nil
}
