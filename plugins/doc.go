// Package plugins is the host side of agenthost's agent and tool plugins, over
// hashicorp/go-plugin with gRPC.
//
// [Launch] starts a plugin binary given by absolute path, refuses it unless
// its SHA-256 matches the digest the host attested (on Linux the file is
// hashed through the descriptor it is then started from, so a binary
// replaced after the check is not what runs; elsewhere the path is
// started), starts it in its sandbox (package sandbox: its own namespaces,
// a file system holding only what it needs, no network but the channel to
// the host, no capabilities, seccomp, Landlock, limits, death with the
// host) through a go-plugin runner, speaks gRPC only over an automatically
// provisioned mutual-TLS connection (AutoMTLS), and kills the process on
// any error during setup. go-plugin gives each plugin a socket directory of
// its own; it is the one place a contained plugin may write, seen at
// /run/agenthost/plugin, and the runner translates the socket addresses the
// two sides exchange. The host dials only a socket a contained plugin made
// in that directory, through a descriptor of it, so no other address and no
// symbolic link planted there is ever reached. Each plugin gets its own Host service, served on that
// plugin's go-plugin broker: the host knows which plugin is calling from
// the connection a call arrives on, never from anything the plugin says.
//
// [LaunchTools] starts a tool plugin the same way. A tool plugin gets no
// Host service: it answers the ToolProvider service's ListTools and
// CallTool, and is asked for its tools at launch, so a binary of the wrong
// kind is refused there. [ToolPlugin.CallTool] passes the call's
// Transaction Token, which the plugin checks with the keys
// [Config.TxnKeys] gives ([TxnKeys]: the authorization server's JWK Set and
// the trust domain); they are sent with ListTools, and again before the
// first call after they change (the keys rotated, or the host had none
// when the plugin started). A call the plugin refuses wraps [ErrRefused].
//
// [Config.Sandbox] chooses the level and limits; [Plugin.Sandbox] reports
// the protections in force. The plugin's stderr goes to the host's log with
// the plugin's name.
package plugins
