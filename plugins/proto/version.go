package pluginpb

// ProtocolVersion is the version of the plugin contract this package
// defines. The go-plugin handshake refuses a plugin built for another.
const ProtocolVersion = 1

// The go-plugin handshake cookie. It is not a secret: it only stops a user
// from running a plugin binary directly by mistake.
const (
	MagicCookieKey   = "AGENTHOST_PLUGIN"
	MagicCookieValue = "agent-plugin-v1"
)

// PluginName is the name the agent plugin is dispensed under.
const PluginName = "agent"

// ToolsPluginName is the name a tool plugin is dispensed under. A binary
// serves one kind only, so an agent plugin configured as a tool plugin (or
// the other way round) fails at start with an unknown plugin type.
const ToolsPluginName = "tools"
