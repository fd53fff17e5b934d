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
// servers and to its agents, authorizes every call, and passes each
// handler the verified [Caller], never a token.
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
// The package depends only on the plugin contract (plugins/proto) and
// go-plugin.
package sdk
