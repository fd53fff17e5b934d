// Package plugins is the host side of agenthost's agent and tool plugins, over
// hashicorp/go-plugin with gRPC.
//
// [Launch] starts a plugin binary given by absolute path, refuses it unless
// its SHA-256 matches the digest the host attested (go-plugin SecureConfig),
// speaks gRPC only over an automatically provisioned mutual-TLS connection
// (AutoMTLS), and kills the process on any error during setup. Each plugin
// gets its own Host service, served on that plugin's go-plugin broker: the
// host knows which plugin is calling from the connection a call arrives on,
// never from anything the plugin says.
//
// [LaunchTools] starts a tool plugin the same way. A tool plugin gets no
// Host service: it answers the ToolProvider service's ListTools and
// CallTool, and is asked for its tools at launch, so a binary of the wrong
// kind is refused there.
//
// The plugin's stderr goes to the host's log with the plugin's name.
package plugins
