// Command textkit is an example agenthost tool plugin: text utilities the
// host serves as MCP tools ("textkit/stats", "textkit/digest") and grants
// to agents. Its tools change nothing, so callers need only the read scope
// of the server that offers them. It holds no credential and receives none:
// the host authorizes each call and sends its Transaction Token, which the
// SDK checks (signature, audience, expiry, and that it was issued for this
// tool and exactly these arguments) before a handler runs. Its tools take
// no business field, so they declare no TxnFields.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agenthost/agenthost/plugins/sdk"
)

// maxText bounds the text a call may pass.
const maxText = 1 << 20

type textArgs struct {
	Text string `json:"text"`
}

func parse(args json.RawMessage) (string, error) {
	var a textArgs
	if err := json.Unmarshal(args, &a); err != nil {
		return "", fmt.Errorf("arguments: %v", err)
	}
	if len(a.Text) > maxText {
		return "", fmt.Errorf("text is %d bytes, at most %d are accepted", len(a.Text), maxText)
	}
	if !utf8.ValidString(a.Text) {
		return "", errors.New("text is not valid UTF-8")
	}
	return a.Text, nil
}

const textSchema = `{"type":"object","properties":{"text":{"type":"string","description":"The text"}},"required":["text"],"additionalProperties":false}`

func main() {
	sdk.ServeTools(sdk.ToolSet{Name: "textkit", Version: "1.0.0", Tools: []sdk.Tool{
		{
			Name:        "stats",
			Description: "Counts the lines, words and characters of a text.",
			InputSchema: json.RawMessage(textSchema),
			ReadOnly:    true,
			Handler: func(_ context.Context, _ sdk.Caller, args json.RawMessage) (string, error) {
				text, err := parse(args)
				if err != nil {
					return "", err
				}
				lines := strings.Count(text, "\n")
				if text != "" && !strings.HasSuffix(text, "\n") {
					lines++
				}
				return fmt.Sprintf("%d lines, %d words, %d characters", lines, len(strings.Fields(text)), utf8.RuneCountInString(text)), nil
			},
		},
		{
			Name:        "digest",
			Description: "Returns the SHA-256 digest of a text (UTF-8), in hex.",
			InputSchema: json.RawMessage(textSchema),
			ReadOnly:    true,
			Handler: func(_ context.Context, _ sdk.Caller, args json.RawMessage) (string, error) {
				text, err := parse(args)
				if err != nil {
					return "", err
				}
				sum := sha256.Sum256([]byte(text))
				return hex.EncodeToString(sum[:]), nil
			},
		},
	}})
}
