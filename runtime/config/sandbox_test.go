package config_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agenthost/agenthost/runtime/config"
)

// sandboxDir returns a directory holding an executable "plugin", a file
// "data.txt" and a directory "models", where a config file can be placed.
func sandboxDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plugin"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    config.ByteSize
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: config.MiB},
		{in: "1KiB", want: 1024},
		{in: "512MiB", want: 512 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "3KB", want: 3000},
		{in: "5MB", want: 5_000_000},
		{in: "2GB", want: 2_000_000_000},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "", wantErr: "size is empty; want a number of bytes, or a number with a unit such as 512MiB or 2GiB"},
		{in: "-1", wantErr: `size "-1" is negative`},
		{in: "-5MiB", wantErr: `size "-5MiB" is negative`},
		{in: "1.5GiB", wantErr: `size "1.5GiB" is not a whole number; use a smaller unit (1536MiB rather than 1.5GiB)`},
		{in: "0.5", wantErr: `size "0.5" is not a whole number; use a smaller unit (1536MiB rather than 1.5GiB)`},
		{in: "MiB", wantErr: `size "MiB" does not start with a number; want a number of bytes, or a number with a unit such as 512MiB or 2GiB`},
		{in: "+5", wantErr: `size "+5" does not start with a number; want a number of bytes, or a number with a unit such as 512MiB or 2GiB`},
		{in: "2gb", wantErr: `size "2gb" has the unknown unit "gb"; want KiB, MiB, GiB, KB, MB or GB, written right after the number (did you mean "2GB"?)`},
		{in: "2gib", wantErr: `size "2gib" has the unknown unit "gib"; want KiB, MiB, GiB, KB, MB or GB, written right after the number (did you mean "2GiB"?)`},
		{in: "512Mi", wantErr: `size "512Mi" has the unknown unit "Mi"; want KiB, MiB, GiB, KB, MB or GB, written right after the number (did you mean "512MiB"?)`},
		{in: "512 MiB", wantErr: `size "512 MiB" has the unknown unit " MiB"; want KiB, MiB, GiB, KB, MB or GB, written right after the number (did you mean "512MiB"?)`},
		{in: "1TB", wantErr: `size "1TB" has the unknown unit "TB"; want KiB, MiB, GiB, KB, MB or GB, written right after the number`},
		{in: "1M", wantErr: `size "1M" has the unknown unit "M"; want KiB, MiB, GiB, KB, MB or GB, written right after the number`},
		{in: "1e9", wantErr: `size "1e9" is not a whole number of bytes, or a whole number followed by a unit (KiB, MiB, GiB, KB, MB or GB)`},
		{in: "1_000", wantErr: `size "1_000" is not a whole number of bytes, or a whole number followed by a unit (KiB, MiB, GiB, KB, MB or GB)`},
		{in: "9223372036854775808", wantErr: `size "9223372036854775808" is too large; the largest is 9223372036854775807 bytes`},
		{in: "8589934592GiB", wantErr: `size "8589934592GiB" is too large; the largest is 9223372036854775807 bytes`},
		{in: "99999999999999999999GB", wantErr: `size "99999999999999999999GB" is too large; the largest is 9223372036854775807 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseByteSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseByteSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   config.ByteSize
		want string
	}{
		{0, "0"},
		{100, "100"},
		{1024, "1KiB"},
		{64 * config.MiB, "64MiB"},
		{config.GiB, "1GiB"},
		{1536 * config.MiB, "1536MiB"},
		{1_500_000, "1500KB"},
		{2 * config.GB, "2GB"},
		{1000 * config.KiB, "1000KiB"},
		{1025, "1025"},
		{-1, "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Fatalf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
			}
			if tt.in < 0 {
				return
			}
			if back, err := config.ParseByteSize(tt.want); err != nil || back != tt.in {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.want, back, err, int64(tt.in))
			}
		})
	}
}

func TestSandboxDecode(t *testing.T) {
	dir := sandboxDir(t)
	c, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(`version: 1
sandbox:
  level: none
  memory: 2GiB
  processes: 64
  cpu: 2.5
  tmp_size: 16MB
agents:
  - name: a
    path: plugin
    sandbox:
      level: strict
      read_only_paths: [models, ./data.txt, "`+dir+`/models/.."]
      loopback_ports: [11434, 8080]
      memory: 536870912
      processes: 32
      cpu: 0.5
      tmp_size: 1MiB
  - name: b
    path: plugin
    sandbox:
mcp:
  plugins:
    - name: p
      path: plugin
      sandbox:
        read_only_paths: [`+filepath.Join(dir, "models")+`]
        memory: 64MiB
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		name string
		got  config.SandboxConfig
		want config.SandboxConfig
	}{
		{"top level", c.Sandbox, config.SandboxConfig{
			Level: config.SandboxNone, Memory: 2 * config.GiB, Processes: 64, CPU: 2.5, TmpSize: 16 * config.MB,
		}},
		{"agent", c.Agents[0].Sandbox, config.SandboxConfig{
			Level:         config.SandboxStrict,
			ReadOnlyPaths: []string{filepath.Join(dir, "models"), filepath.Join(dir, "data.txt"), dir},
			LoopbackPorts: []int{11434, 8080},
			Memory:        512 * config.MiB, Processes: 32, CPU: 0.5, TmpSize: config.MiB,
		}},
		{"agent with an empty section", c.Agents[1].Sandbox, config.SandboxConfig{}},
		{"plugin", c.MCP.Plugins[0].Sandbox, config.SandboxConfig{
			ReadOnlyPaths: []string{filepath.Join(dir, "models")}, Memory: 64 * config.MiB,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("sandbox (-want +got):\n%s", diff)
			}
		})
	}
	if p, ok := c.Position("agents[0].sandbox.memory"); !ok || p.Line != 15 {
		t.Errorf("Position(agents[0].sandbox.memory) = %v, %v; want line 15", p, ok)
	}
}

func TestSandboxRelativeToWorkingDirectory(t *testing.T) {
	dir := sandboxDir(t)
	t.Chdir(dir)
	c, err := config.Parse("agenthost.yaml", []byte("version: 1\nagents:\n  - name: a\n    path: plugin\n    sandbox:\n      read_only_paths: [models]\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := c.Agents[0].Sandbox.ReadOnlyPaths, []string{filepath.Join(dir, "models")}; !cmp.Equal(got, want) {
		t.Errorf("read_only_paths = %q, want %q", got, want)
	}
}

func TestSandboxEffective(t *testing.T) {
	dir := sandboxDir(t)
	defaults := config.SandboxConfig{
		Level: config.SandboxStrict, Memory: config.GiB, Processes: 512, CPU: 0, TmpSize: 64 * config.MiB,
	}
	tests := []struct {
		name  string
		top   string // the top-level sandbox section
		entry string // the sandbox section of the agent and of the plugin
		want  config.SandboxConfig
	}{
		{"defaults", "", "", defaults},
		{
			name: "top level only",
			top:  "{level: none, memory: 2GiB, processes: 100, cpu: 4, tmp_size: 8MiB}",
			want: config.SandboxConfig{Level: config.SandboxNone, Memory: 2 * config.GiB, Processes: 100, CPU: 4, TmpSize: 8 * config.MiB},
		},
		{
			name:  "entry only",
			entry: "{memory: 256MiB, cpu: 0.25, read_only_paths: [models], loopback_ports: [11434]}",
			want: config.SandboxConfig{
				Level: config.SandboxStrict, Memory: 256 * config.MiB, Processes: 512, CPU: 0.25, TmpSize: 64 * config.MiB,
				ReadOnlyPaths: []string{filepath.Join(dir, "models")}, LoopbackPorts: []int{11434},
			},
		},
		{
			name:  "entry overrides the top level key by key",
			top:   "{level: none, memory: 2GiB, processes: 100, cpu: 4, tmp_size: 8MiB}",
			entry: "{level: strict, processes: 20, tmp_size: 2MiB}",
			want:  config.SandboxConfig{Level: config.SandboxStrict, Memory: 2 * config.GiB, Processes: 20, CPU: 4, TmpSize: 2 * config.MiB},
		},
		{
			name:  "entry relaxes a limit",
			top:   "{memory: 128MiB, cpu: 1}",
			entry: "{level: none, memory: 8GiB, cpu: 16}",
			want:  config.SandboxConfig{Level: config.SandboxNone, Memory: 8 * config.GiB, Processes: 512, CPU: 16, TmpSize: 64 * config.MiB},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\n"
			if tt.top != "" {
				src += "sandbox: " + tt.top + "\n"
			}
			entry := ""
			if tt.entry != "" {
				entry = ", sandbox: " + tt.entry
			}
			src += "agents: [{name: x, path: plugin" + entry + "}]\n"
			src += "mcp: {plugins: [{name: x, path: plugin" + entry + "}]}\n"
			c, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, get := range []struct {
				what string
				fn   func(string) (config.SandboxConfig, bool)
			}{{"AgentSandbox", c.AgentSandbox}, {"PluginSandbox", c.PluginSandbox}} {
				got, ok := get.fn("x")
				if !ok {
					t.Fatalf("%s(x) found nothing", get.what)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s(x) (-want +got):\n%s", get.what, diff)
				}
				if got, ok := get.fn("nobody"); ok {
					t.Errorf("%s(nobody) = %+v, true; want false", get.what, got)
				}
			}
		})
	}
}

func TestSandboxEffectiveIsACopy(t *testing.T) {
	c := config.Default()
	c.Agents = []config.AgentConfig{{Name: "a", Sandbox: config.SandboxConfig{ReadOnlyPaths: []string{"/srv"}, LoopbackPorts: []int{80}}}}
	got, _ := c.AgentSandbox("a")
	got.ReadOnlyPaths[0], got.LoopbackPorts[0] = "/", 1
	if s := c.Agents[0].Sandbox; s.ReadOnlyPaths[0] != "/srv" || s.LoopbackPorts[0] != 80 {
		t.Errorf("changing the effective sandbox changed the config: %+v", s)
	}
}

func TestSandboxEffectiveOfLiteral(t *testing.T) {
	// A Config literal has no defaults; the effective sandbox still does.
	c := &config.Config{
		Agents: []config.AgentConfig{{Name: "a"}},
		MCP:    config.MCPConfig{Plugins: []config.MCPPluginConfig{{Name: "a", Sandbox: config.SandboxConfig{Processes: 99}}}},
	}
	tests := []struct {
		name string
		fn   func(string) (config.SandboxConfig, bool)
		want config.SandboxConfig
	}{
		{"agent", c.AgentSandbox, config.SandboxConfig{
			Level: config.DefaultSandboxLevel, Memory: config.DefaultSandboxMemory, Processes: config.DefaultSandboxProcesses,
			CPU: config.DefaultSandboxCPU, TmpSize: config.DefaultSandboxTmpSize,
		}},
		{"plugin of the same name", c.PluginSandbox, config.SandboxConfig{
			Level: config.DefaultSandboxLevel, Memory: config.DefaultSandboxMemory, Processes: 99,
			CPU: config.DefaultSandboxCPU, TmpSize: config.DefaultSandboxTmpSize,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.fn("a")
			if diff := cmp.Diff(tt.want, got); !ok || diff != "" {
				t.Errorf("found %v (-want +got):\n%s", ok, diff)
			}
		})
	}
}

func TestSandboxProblems(t *testing.T) {
	dir := sandboxDir(t)
	missing := filepath.Join(dir, "missing")
	// Each body is one line, placed in the top-level sandbox section (on
	// line 3), an agent's (line 6) or a tool plugin's (line 7).
	const (
		top    = "top"
		agent  = "agent"
		plugin = "plugin"
	)
	tests := []struct {
		name  string
		where string
		body  string
		key   string // the key path below the sandbox section
		kind  error
		text  string
	}{
		{"unknown level", top, "level: loose", "level", config.ErrType, `unknown sandbox level "loose"; want one of strict, none`},
		{"empty level", agent, `level: ""`, "level", config.ErrType, `unknown sandbox level ""; want one of strict, none`},
		{"level is case-sensitive", plugin, "level: Strict", "level", config.ErrType, `unknown sandbox level "Strict"`},
		{"unknown key", agent, "memroy: 1GiB", "memroy", config.ErrUnknownKey, `unknown key "memroy" (did you mean "memory"?)`},
		{"read-only paths at the top level", top, "read_only_paths: [/srv]", "read_only_paths", config.ErrInvalid,
			"is per agent or per tool plugin: set it under the sandbox key of the agents and mcp.plugins entries that need it"},
		{"loopback ports at the top level", top, "loopback_ports: [11434]", "loopback_ports", config.ErrInvalid,
			"is per agent or per tool plugin: set it under the sandbox key of the agents and mcp.plugins entries that need it"},
		{"memory below the minimum", top, "memory: 8MiB", "memory", config.ErrInvalid, "8MiB is below the minimum of 16MiB"},
		{"explicit zero memory at the top level", top, "memory: 0", "memory", config.ErrInvalid, "0 is below the minimum of 16MiB"},
		{"memory with a fraction", top, "memory: 1.5GiB", "memory", config.ErrType, `size "1.5GiB" is not a whole number`},
		{"negative memory", agent, "memory: -1", "memory", config.ErrType, `size "-1" is negative`},
		{"memory with a wrong unit", plugin, "memory: 2gb", "memory", config.ErrType, `unknown unit "gb"`},
		{"memory too large", top, "memory: 9999999999GiB", "memory", config.ErrType, "is too large"},
		{"memory as a list", top, "memory: [1]", "memory", config.ErrType, "expected a single value, got a list"},
		{"explicit zero memory of an agent", agent, "memory: 0", "memory", config.ErrInvalid,
			"0 is below the minimum of 16MiB; omit the key to inherit sandbox.memory"},
		{"memory of a plugin below the minimum", plugin, "memory: 1MiB", "memory", config.ErrInvalid,
			"1MiB is below the minimum of 16MiB; omit the key to inherit sandbox.memory"},
		{"processes below the minimum", top, "processes: 8", "processes", config.ErrInvalid, "8 is below the minimum of 16"},
		{"negative processes of an agent", agent, "processes: -1", "processes", config.ErrInvalid,
			"-1 is below the minimum of 16; omit the key to inherit sandbox.processes"},
		{"explicit zero processes of a plugin", plugin, "processes: 0", "processes", config.ErrInvalid,
			"0 is below the minimum of 16; omit the key to inherit sandbox.processes"},
		{"processes as text", top, "processes: many", "processes", config.ErrType, `expected an integer, got the string "many"`},
		{"tmp size below the minimum", top, "tmp_size: 512KiB", "tmp_size", config.ErrInvalid, "512KiB is below the minimum of 1MiB"},
		{"explicit zero tmp size of an agent", agent, "tmp_size: 0", "tmp_size", config.ErrInvalid,
			"0 is below the minimum of 1MiB; omit the key to inherit sandbox.tmp_size"},
		{"negative cpu", top, "cpu: -1", "cpu", config.ErrInvalid, "-1 is not a number of cores; want more than 0, or 0 for no limit"},
		{"too many cpus", top, "cpu: 2000", "cpu", config.ErrInvalid, "2000 cores is more than the maximum of 1024"},
		{"cpu as text", top, "cpu: two", "cpu", config.ErrType, `expected a number, got the string "two"`},
		{"explicit zero cpu of an agent", agent, "cpu: 0", "cpu", config.ErrInvalid,
			"must be more than 0; omit the key to inherit sandbox.cpu (only the top level can leave the CPU not limited, with 0)"},
		{"negative cpu of a plugin", plugin, "cpu: -0.5", "cpu", config.ErrInvalid, "-0.5 is not a number of cores; want more than 0"},
		{"too many cpus of a plugin", plugin, "cpu: 1024.5", "cpu", config.ErrInvalid, "1024.5 cores is more than the maximum of 1024"},
		{"empty path", agent, `read_only_paths: [models, ""]`, "read_only_paths[1]", config.ErrInvalid, "is empty"},
		{"path leaving the directory", agent, "read_only_paths: [../etc]", "read_only_paths[0]", config.ErrInvalid,
			`"../etc" leaves the configuration file's directory through ".."; give the absolute path`},
		{"path leaving the directory after cleaning", plugin, "read_only_paths: [models/../../etc]", "read_only_paths[0]", config.ErrInvalid,
			`"models/../../etc" leaves the configuration file's directory`},
		{"root", agent, "read_only_paths: [/]", "read_only_paths[0]", config.ErrInvalid,
			`"/" is the whole file system; give the files and directories the plugin needs`},
		{"root after cleaning", plugin, "read_only_paths: [/srv/..]", "read_only_paths[0]", config.ErrInvalid, `"/" is the whole file system`},
		{"path listed twice", agent, "read_only_paths: [models, " + dir + "/models/]", "read_only_paths[1]", config.ErrInvalid, " is listed twice"},
		{"missing path", plugin, "read_only_paths: [missing]", "read_only_paths[0]", config.ErrInvalid, missing + " does not exist"},
		{"paths not a list", agent, "read_only_paths: /srv", "read_only_paths", config.ErrType, `expected a list, got the string "/srv"`},
		{"port zero", agent, "loopback_ports: [0]", "loopback_ports[0]", config.ErrInvalid, "port 0 is out of range; want 1 to 65535"},
		{"port too large", plugin, "loopback_ports: [80, 65536]", "loopback_ports[1]", config.ErrInvalid, "port 65536 is out of range; want 1 to 65535"},
		{"port listed twice", agent, "loopback_ports: [11434, 8080, 11434]", "loopback_ports[2]", config.ErrInvalid, "port 11434 is listed twice"},
		{"port as text", plugin, "loopback_ports: [http]", "loopback_ports[0]", config.ErrType, `expected an integer, got the string "http"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src, base string
			var line int
			switch tt.where {
			case top:
				src, base, line = "version: 1\nsandbox:\n  "+tt.body+"\n", "sandbox", 3
			case agent:
				src, base, line = "version: 1\nagents:\n  - name: a\n    path: plugin\n    sandbox:\n      "+tt.body+"\n", "agents[0].sandbox", 6
			case plugin:
				src, base, line = "version: 1\nmcp:\n  plugins:\n    - name: p\n      path: plugin\n      sandbox:\n        "+tt.body+"\n", "mcp.plugins[0].sandbox", 7
			}
			_, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(src))
			check(t, err, []want{{line, base + "." + tt.key, tt.kind, tt.text}})
		})
	}
}

func TestSandboxValidateBuiltInCode(t *testing.T) {
	// Values that decoding cannot produce, but code building a Config can.
	dir := sandboxDir(t)
	exe := filepath.Join(dir, "plugin")
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []want
	}{
		{"untouched", func(c *config.Config) {}, nil},
		{
			name:   "unknown level of an agent",
			change: func(c *config.Config) { c.Agents[0].Sandbox.Level = "loose" },
			want:   []want{{0, "agents[0].sandbox.level", config.ErrInvalid, `unknown sandbox level "loose"; want one of strict, none`}},
		},
		{
			name:   "relative path",
			change: func(c *config.Config) { c.MCP.Plugins[0].Sandbox.ReadOnlyPaths = []string{"models"} },
			want:   []want{{0, "mcp.plugins[0].sandbox.read_only_paths[0]", config.ErrInvalid, `"models" is not an absolute path`}},
		},
		{
			name:   "zero limits of an entry inherit",
			change: func(c *config.Config) { c.Agents[0].Sandbox = config.SandboxConfig{} },
		},
		{
			name:   "top level cpu zero is no limit",
			change: func(c *config.Config) { c.Sandbox.CPU = 0 },
		},
		{
			name:   "cpu not a number",
			change: func(c *config.Config) { c.Sandbox.CPU = math.NaN() },
			want:   []want{{0, "sandbox.cpu", config.ErrInvalid, "NaN is not a number of cores"}},
		},
		{
			name:   "unknown top-level level",
			change: func(c *config.Config) { c.Sandbox.Level = "" },
			want:   []want{{0, "sandbox.level", config.ErrInvalid, `unknown sandbox level ""`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.Agents = []config.AgentConfig{{Name: "a", Path: exe, Sandbox: config.SandboxConfig{Memory: 32 * config.MiB}}}
			c.MCP.Plugins = []config.MCPPluginConfig{{Name: "p", Path: exe}}
			tt.change(c)
			check(t, c.Validate(), tt.want)
		})
	}
}

func TestSandboxDigest(t *testing.T) {
	dir := sandboxDir(t)
	const (
		base   = "version: 1\n"
		agent  = "agents:\n  - name: a\n    path: plugin\n"
		plugin = "mcp:\n  plugins:\n    - name: p\n      path: plugin\n"
	)
	digest := func(t *testing.T, src string) string {
		t.Helper()
		c, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(src))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return c.Digest()
	}
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"top-level defaults written out", base, base + "sandbox: {level: strict, memory: 1GiB, processes: 512, cpu: 0, tmp_size: 64MiB}\n", true},
		{"same sizes in other units", base + "sandbox: {memory: 1GiB, tmp_size: 64MiB}\n", base + "sandbox: {memory: 1024MiB, tmp_size: 67108864}\n", true},
		{"empty agent section", base + agent, base + agent + "    sandbox: {}\n", true},
		{"top-level level", base, base + "sandbox: {level: none}\n", false},
		{"top-level memory", base, base + "sandbox: {memory: 2GiB}\n", false},
		{"top-level processes", base, base + "sandbox: {processes: 513}\n", false},
		{"top-level cpu", base, base + "sandbox: {cpu: 1}\n", false},
		{"top-level tmp size", base, base + "sandbox: {tmp_size: 65MiB}\n", false},
		{"agent level", base + agent, base + agent + "    sandbox: {level: none}\n", false},
		{"agent read-only path", base + agent, base + agent + "    sandbox: {read_only_paths: [models]}\n", false},
		{"agent loopback port", base + agent, base + agent + "    sandbox: {loopback_ports: [11434]}\n", false},
		{"agent limit", base + agent, base + agent + "    sandbox: {processes: 100}\n", false},
		{"plugin level", base + plugin, base + plugin + "      sandbox: {level: none}\n", false},
		{"plugin read-only path", base + plugin, base + plugin + "      sandbox: {read_only_paths: [data.txt]}\n", false},
		{"plugin limit", base + plugin, base + plugin + "      sandbox: {cpu: 0.5}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := digest(t, tt.a), digest(t, tt.b)
			if (a == b) != tt.same {
				t.Errorf("digests %s and %s: same = %v, want %v", a, b, a == b, tt.same)
			}
		})
	}
}
