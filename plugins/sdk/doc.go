// Package sdk is what an agent author imports to build an agenthost agent
// plugin. An agent implements [Agent]; its main function calls [Serve]:
//
//	type echo struct{}
//
//	func (echo) Describe() sdk.Description { return sdk.Description{Name: "echo"} }
//
//	func (echo) Run(ctx context.Context, t *sdk.Task) (string, error) {
//		return "you said: " + t.Input, nil
//	}
//
//	func main() { sdk.Serve(echo{}) }
//
// The plugin runs as its own process, started by the host. It reaches the
// outside world only through the [Task]'s methods (CallTool, Complete,
// CallAgent, AskUser), which call the host; the host decides, acquires any
// token and calls the target. The plugin never holds a credential.
//
// A tool plugin offers tools instead of running tasks: its main function
// calls [ServeTools] with a [ToolSet]. The host serves the tools on its MCP
// servers and to its agents and authorizes every call; each call carries
// a Transaction Token the host's Transaction Token Service signed for it
// (never an access token), and the SDK checks it before the handler runs
// ([Caller.VerifyCall]): the signature with the keys the host sent (ES256),
// typ txntoken+jwt, aud = the trust domain, exp, the required claims, and
// that its tctx names this tool, the SHA-256 of exactly these arguments
// ([ArgsDigest]) and the values of the business fields the tool declares
// ([Tool.TxnFields], say an amount). A call without a valid token for its
// arguments is refused; the handler gets the [Caller] read from the token,
// with its verified [TxnClaims]. The check uses the standard library only.
//
// Build a plugin static and without gRPC's request tracing, as the
// project's Makefile builds its examples:
//
//	CGO_ENABLED=0 go build -tags grpcnotrace -o myagent .
//
// A static binary needs no loader or libc in its sandbox, and the tag drops
// golang.org/x/net/trace and html/template: about 2 MiB less resident per
// idle agent.
//
// The package depends only on the plugin contract (plugins/proto),
// go-plugin, and the host's canonical JSON (credentials/txntoken/canonjson,
// standard library only), so a tool hashes its arguments exactly as the
// host did when it minted the call's Txn-Token.
package sdk
