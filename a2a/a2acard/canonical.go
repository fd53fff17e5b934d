package a2acard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/credentials/txntoken/canonjson"
)

// ErrMalformed reports a card whose JSON cannot be canonicalized or whose
// signatures cannot be read.
var ErrMalformed = errors.New("a2acard: malformed card")

// signaturesMember is the card member a signature does not cover.
const signaturesMember = "signatures"

// Canonical returns the bytes a card signature covers: the JSON object raw
// without its top-level signatures member and without null, "", [] and {}
// values at any depth (removed bottom-up, so an object left empty by the
// removal goes too), in RFC 8785 canonical form (see the package
// documentation for canonjson's corners). raw must be one JSON object with
// no duplicate member names and valid UTF-8. SPECS.md §16.1 "Signed
// cards" gives the rule this follows.
func Canonical(raw []byte) ([]byte, error) {
	// canonjson refuses what two readers could read differently
	// (duplicate names, invalid UTF-8, lone surrogates, trailing data)
	// before the decoder below, which would silently pick one.
	if _, err := canonjson.Canonical(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	delete(obj, signaturesMember)
	pruned, _ := prune(obj)
	if pruned == nil {
		pruned = map[string]any{}
	}
	b, err := json.Marshal(pruned)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	out, err := canonjson.Canonical(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return out, nil
}

// CanonicalCard is [Canonical] of card's JSON form.
func CanonicalCard(card *a2a.AgentCard) ([]byte, error) {
	raw, err := marshalCard(card)
	if err != nil {
		return nil, err
	}
	return Canonical(raw)
}

func marshalCard(card *a2a.AgentCard) ([]byte, error) {
	if card == nil {
		return nil, fmt.Errorf("%w: nil card", ErrMalformed)
	}
	raw, err := json.Marshal(card)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return raw, nil
}

// prune returns v without empty values, and whether v itself is empty
// (null, "", [] or {} once pruned). Booleans and numbers are never empty.
func prune(v any) (any, bool) {
	switch t := v.(type) {
	case nil:
		return nil, true
	case string:
		return t, t == ""
	case map[string]any:
		for k, m := range t {
			p, empty := prune(m)
			if empty {
				delete(t, k)
				continue
			}
			t[k] = p
		}
		return t, len(t) == 0
	case []any:
		out := t[:0]
		for _, m := range t {
			if p, empty := prune(m); !empty {
				out = append(out, p)
			}
		}
		return out, len(out) == 0
	default:
		return t, false
	}
}
