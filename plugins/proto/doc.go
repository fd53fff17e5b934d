// Package pluginpb is the versioned contract between agenthost and its
// plugins: the protobuf services Agent (implemented by the plugin) and Host
// (implemented by the host, reached through the go-plugin broker), defined
// in plugin.proto, and ToolProvider (implemented by a tool plugin), all
// generated into plugin.pb.go and plugin_grpc.pb.go.
//
// # Versions
//
// The proto package is agenthost.plugin.v1 and [ProtocolVersion] is 1.
// Fields are only ever added; a field number is never reused. The test
// TestContractIsStable pins every message, field number and type against
// testdata/contract_v1.golden, so an incompatible edit fails the build.
//
// # Regenerating
//
// `make generate` regenerates the Go code with protoc 3.21.12,
// protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.5.1 (the versions named
// in the generated files' headers).
//
// This package imports nothing else of agenthost, so the plugin SDK can
// depend on it alone.
package pluginpb
