// Command tokenload measures the embedded authorization server's token
// endpoint: requests per second for client_credentials with a
// private_key_jwt client assertion and for token exchange (a user's token
// and an agent's JWT-SVID as actor), at a given number of concurrent
// clients, with the server's state in SQLite.
//
// It starts the server in-process on a loopback listener and drives it
// over real HTTP, so the figures include HTTP parsing, JSON, the replay
// cache write and the token signature:
//
//	go run ./cmd/tokenload -flow client_credentials -clients 32 -duration 10s
//	go run ./cmd/tokenload -flow token_exchange -clients 1
//
// Assertions are signed before the clock starts, so the figures measure
// the server, not the load generator's signing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	flow := flag.String("flow", FlowClientCredentials, "client_credentials or token_exchange")
	clients := flag.Int("clients", 1, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "how long to send requests")
	dir := flag.String("dir", "", "directory for the SQLite database (default: a temporary directory)")
	audited := flag.Bool("audit", false, "record every issued token in a tamper-evident audit log first, as the host does")
	flag.Parse()

	if *clients < 1 || *clients > 1024 {
		fmt.Fprintln(os.Stderr, "tokenload: -clients must be between 1 and 1024")
		os.Exit(2)
	}
	if *flow != FlowClientCredentials && *flow != FlowTokenExchange {
		fmt.Fprintf(os.Stderr, "tokenload: unknown -flow %q (client_credentials or token_exchange)\n", *flow)
		os.Exit(2)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "tokenload-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "tokenload:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	ctx := context.Background()
	h, err := NewHarness(ctx, *dir, *audited)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenload:", err)
		os.Exit(1)
	}
	defer h.Close()
	res, err := h.Run(ctx, *flow, *clients, *duration)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenload:", err)
		os.Exit(1)
	}
	fmt.Printf("flow=%s clients=%d requests=%d errors=%d elapsed=%s rate=%.0f req/s p50=%s p99=%s\n",
		*flow, *clients, res.Requests, res.Errors, res.Elapsed.Round(time.Millisecond), res.Rate(),
		res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond))
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "tokenload: %d requests failed; first: %s\n", res.Errors, res.FirstError)
		os.Exit(1)
	}
}
