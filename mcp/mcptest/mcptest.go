package mcptest

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// initializeBody is an MCP initialize request.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},` +
	`"clientInfo":{"name":"raw","version":"1"}}}`

// Initialize sends an MCP initialize to endpoint with token under scheme
// ("Bearer" or "DPoP") and, when key is not nil, a DPoP proof signed with
// key for the request and the token. It returns the status and the
// WWW-Authenticate challenges joined with ", ".
func Initialize(ctx context.Context, endpoint, scheme, token string, key crypto.Signer) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(initializeBody))
	if err != nil {
		return 0, "", fmt.Errorf("mcptest: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", scheme+" "+token)
	if key != nil {
		proof, err := dpop.NewProof(ctx, key, dpop.ProofParams{Method: http.MethodPost, URL: endpoint, AccessToken: token})
		if err != nil {
			return 0, "", fmt.Errorf("mcptest: proof: %w", err)
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("mcptest: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), nil
}
