package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SandboxLevel is how strictly a plugin process is contained.
type SandboxLevel string

// Sandbox levels.
const (
	// SandboxStrict runs the plugin in its own user, mount, PID, network,
	// IPC and UTS namespaces, under a seccomp filter, Landlock rules and
	// resource limits.
	SandboxStrict SandboxLevel = "strict"
	// SandboxNone runs the plugin uncontained, for debugging only: the host
	// starts such a plugin only when it is run with --unsafe-no-sandbox.
	SandboxNone SandboxLevel = "none"
)

var sandboxLevels = []SandboxLevel{SandboxStrict, SandboxNone}

// Valid reports whether l is one of the defined levels.
func (l SandboxLevel) Valid() bool { return oneOf(l, sandboxLevels) }

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (l *SandboxLevel) UnmarshalConfigScalar(text string) error {
	v := SandboxLevel(text)
	if !v.Valid() {
		return enumError("sandbox level", text, sandboxLevels)
	}
	*l = v
	return nil
}

// ByteSize is an amount of memory or storage, in bytes. In the file it is a
// whole number of bytes, or a whole number followed directly by one of the
// units KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000),
// spelled with exactly this case: 1048576, 512MiB, 2GB.
type ByteSize int64

var _ ScalarUnmarshaler = (*ByteSize)(nil)

// Units of [ByteSize].
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	KB  ByteSize = 1000
	MB  ByteSize = 1000 * KB
	GB  ByteSize = 1000 * MB
)

type byteUnit struct {
	name string
	size ByteSize
}

// byteUnits are the units of [ByteSize], binary ones first: the order in
// which [ByteSize.String] prefers them.
var byteUnits = []byteUnit{
	{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"GB", GB}, {"MB", MB}, {"KB", KB},
}

const byteUnitList = "KiB, MiB, GiB, KB, MB or GB"

// ParseByteSize reads a size written as described at [ByteSize].
func ParseByteSize(s string) (ByteSize, error) {
	if s == "" {
		return 0, errors.New("size is empty; want a number of bytes, or a number with a unit such as 512MiB or 2GiB")
	}
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	num, unit := s[:end], s[end:]
	switch {
	case strings.HasPrefix(s, "-"):
		return 0, fmt.Errorf("size %s is negative", quoteValue(s))
	case num == "":
		return 0, fmt.Errorf("size %s does not start with a number; want a number of bytes, or a number with a unit such as 512MiB or 2GiB", quoteValue(s))
	case strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ","):
		return 0, fmt.Errorf("size %s is not a whole number; use a smaller unit (1536MiB rather than 1.5GiB)", quoteValue(s))
	}
	mult := ByteSize(1)
	if unit != "" {
		i := slices.IndexFunc(byteUnits, func(u byteUnit) bool { return u.name == unit })
		if i < 0 {
			return 0, unknownUnitError(s, num, unit)
		}
		mult = byteUnits[i].size
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || ByteSize(n) > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %s is too large; the largest is %d bytes", quoteValue(s), int64(math.MaxInt64))
	}
	return ByteSize(n) * mult, nil
}

// unknownUnitError explains a size whose number is followed by something
// that is not a unit, suggesting the unit that was probably meant.
func unknownUnitError(s, num, unit string) error {
	trimmed := strings.TrimSpace(unit)
	for i := 0; i < len(trimmed); i++ {
		if c := trimmed[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("size %s is not a whole number of bytes, or a whole number followed by a unit (%s)", quoteValue(s), byteUnitList)
		}
	}
	msg := fmt.Sprintf("size %s has the unknown unit %s; want %s, written right after the number", quoteValue(s), quoteValue(unit), byteUnitList)
	for _, u := range byteUnits {
		if strings.EqualFold(trimmed, u.name) || strings.EqualFold(trimmed+"B", u.name) && strings.HasSuffix(u.name, "iB") {
			return fmt.Errorf("%s (did you mean %q?)", msg, num+u.name)
		}
	}
	return errors.New(msg)
}

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (b *ByteSize) UnmarshalConfigScalar(text string) error {
	parsed, err := ParseByteSize(text)
	if err != nil {
		return err
	}
	*b = parsed
	return nil
}

// String writes b as the file would, in the unit that gives the smallest
// whole number: 1GiB, 64MiB, 1500KB, 100.
func (b ByteSize) String() string {
	best := strconv.FormatInt(int64(b), 10)
	if b <= 0 {
		return best
	}
	least := b
	for _, u := range byteUnits {
		if b%u.size == 0 && b/u.size < least {
			least = b / u.size
			best = strconv.FormatInt(int64(least), 10) + u.name
		}
	}
	return best
}

// Defaults of the sandbox section, for a plugin whose own sandbox and the
// top-level one leave a key unset.
const (
	DefaultSandboxLevel     = SandboxStrict
	DefaultSandboxMemory    = 1 * GiB
	DefaultSandboxProcesses = 512
	DefaultSandboxTmpSize   = 64 * MiB
	// DefaultSandboxCPU, zero, leaves the CPU not limited.
	DefaultSandboxCPU float64 = 0
)

// Bounds of the sandbox limits checked by [Config.Validate].
const (
	MinSandboxMemory    = 16 * MiB
	MinSandboxProcesses = 16
	MinSandboxTmpSize   = 1 * MiB
	MaxSandboxCPU       = 1024
)

// SandboxConfig is how plugin processes (agent plugins and tool plugins)
// are contained. The top-level sandbox section holds the level and limits
// every plugin gets; the sandbox key of an agent or a tool plugin overrides
// them key by key, and adds the paths and ports that plugin may reach. In an
// agent's or a tool plugin's section an omitted key (a zero value) inherits
// the top-level value; a zero written in the file is refused, since it more
// likely means "no limit". [Config.AgentSandbox] and [Config.PluginSandbox]
// return the effective values.
type SandboxConfig struct {
	// Level is strict or none. Default strict. None runs the plugin
	// uncontained, for debugging only: the host starts such a plugin only
	// when run with --unsafe-no-sandbox, and audits it.
	Level SandboxLevel `json:"level"`
	// ReadOnlyPaths are extra files and directories the plugin may read.
	// Per agent or tool plugin only. A relative path is resolved against
	// the directory of the configuration file and must stay inside it (no
	// ".." leaving it); each path must exist, and "/" is refused.
	ReadOnlyPaths []string `json:"read_only_paths,omitempty"`
	// LoopbackPorts are TCP ports on the host's loopback interface that
	// the plugin may connect to, for example 11434 for a model served at
	// 127.0.0.1:11434. Per agent or tool plugin only. 1–65535, each once.
	LoopbackPorts []int `json:"loopback_ports,omitempty"`
	// Memory caps the plugin's memory. Default 1GiB, at least 16MiB.
	Memory ByteSize `json:"memory"`
	// Processes caps the plugin's processes and threads together. Default
	// 512, at least 16.
	Processes int `json:"processes"`
	// CPU caps the plugin's CPU time, in cores (0.5 is half of one core),
	// at most 1024. It is enforced only where the host can create control
	// groups. Default 0: not limited. Only the top level can set 0; an
	// agent or tool plugin inherits it by omitting the key.
	CPU float64 `json:"cpu"`
	// TmpSize is the size of the plugin's private /tmp. Default 64MiB, at
	// least 1MiB.
	TmpSize ByteSize `json:"tmp_size"`
}

// defaultSandbox is the top-level sandbox section of an empty file.
func defaultSandbox() SandboxConfig {
	return SandboxConfig{
		Level:     DefaultSandboxLevel,
		Memory:    DefaultSandboxMemory,
		Processes: DefaultSandboxProcesses,
		CPU:       DefaultSandboxCPU,
		TmpSize:   DefaultSandboxTmpSize,
	}
}

// AgentSandbox returns the effective sandbox of the agent called name: each
// key from the agent's sandbox section, else from the top-level one, else
// the default. It reports false when no agent has that name.
func (c *Config) AgentSandbox(name string) (SandboxConfig, bool) {
	for _, a := range c.Agents {
		if a.Name == name {
			return c.Sandbox.merge(a.Sandbox), true
		}
	}
	return SandboxConfig{}, false
}

// PluginSandbox returns the effective sandbox of the tool plugin (under
// mcp.plugins) called name: each key from the plugin's sandbox section, else
// from the top-level one, else the default. It reports false when no tool
// plugin has that name.
func (c *Config) PluginSandbox(name string) (SandboxConfig, bool) {
	for _, p := range c.MCP.Plugins {
		if p.Name == name {
			return c.Sandbox.merge(p.Sandbox), true
		}
	}
	return SandboxConfig{}, false
}

// merge returns the sandbox of a plugin whose own section is entry, when top
// is the top-level section. Paths and ports are the entry's only.
func (top SandboxConfig) merge(entry SandboxConfig) SandboxConfig {
	return SandboxConfig{
		Level:         cmp.Or(entry.Level, top.Level, DefaultSandboxLevel),
		ReadOnlyPaths: slices.Clone(entry.ReadOnlyPaths),
		LoopbackPorts: slices.Clone(entry.LoopbackPorts),
		Memory:        cmp.Or(entry.Memory, top.Memory, DefaultSandboxMemory),
		Processes:     cmp.Or(entry.Processes, top.Processes, DefaultSandboxProcesses),
		CPU:           cmp.Or(entry.CPU, top.CPU, DefaultSandboxCPU),
		TmpSize:       cmp.Or(entry.TmpSize, top.TmpSize, DefaultSandboxTmpSize),
	}
}

// resolveSandboxPaths makes the read-only paths of a plugin absolute
// against dir, the directory of the configuration file, and cleans them. A
// relative path that leaves dir through ".." is left as written, for
// [Config.Validate] to refuse.
func resolveSandboxPaths(paths []string, dir string) {
	for i, p := range paths {
		switch {
		case p == "":
		case filepath.IsAbs(p):
			paths[i] = filepath.Clean(p)
		case climbs(filepath.Clean(p)):
		default:
			joined := filepath.Join(dir, p)
			if abs, err := filepath.Abs(joined); err == nil {
				joined = abs
			}
			paths[i] = joined
		}
	}
}

// climbs reports whether the cleaned path p has a ".." element.
func climbs(p string) bool {
	return slices.Contains(strings.Split(filepath.ToSlash(p), "/"), "..")
}

// sandbox checks the top-level sandbox section, where every limit has a
// value (a zero one was written, or the Config was not built by [Parse] or
// [Default]).
func (v *validator) sandbox() {
	s := v.c.Sandbox
	if !s.Level.Valid() {
		v.invalid("sandbox.level", "%v", enumError("sandbox level", string(s.Level), sandboxLevels))
	}
	const perPlugin = "is per agent or per tool plugin: set it under the sandbox key of the agents and mcp.plugins entries that need it"
	if len(s.ReadOnlyPaths) > 0 {
		v.invalid("sandbox.read_only_paths", perPlugin)
	}
	if len(s.LoopbackPorts) > 0 {
		v.invalid("sandbox.loopback_ports", perPlugin)
	}
	v.sandboxLimits("sandbox", s, nil)
}

// sandboxEntry checks the sandbox section of an agent or tool plugin at
// path, where an omitted key inherits the top-level value.
func (v *validator) sandboxEntry(path string, s SandboxConfig) {
	if s.Level != "" && !s.Level.Valid() {
		v.invalid(path+".level", "%v", enumError("sandbox level", string(s.Level), sandboxLevels))
	}
	// A key written with a zero value would silently inherit; that is
	// refused, since it more likely means "no limit".
	written := func(key string) bool {
		_, ok := v.c.pos[path+"."+key]
		return ok
	}
	v.sandboxLimits(path, s, written)
	v.sandboxPaths(path+".read_only_paths", s.ReadOnlyPaths)
	ports := map[int]bool{}
	for j, port := range s.LoopbackPorts {
		p := fmt.Sprintf("%s.loopback_ports[%d]", path, j)
		switch {
		case port < 1 || port > 65535:
			v.invalid(p, "port %d is out of range; want 1 to 65535", port)
		case ports[port]:
			v.invalid(p, "port %d is listed twice", port)
		}
		ports[port] = true
	}
}

// sandboxLimits checks the limits of the sandbox section at path. written is
// nil for the top level, where every limit is checked; for an agent or tool
// plugin, a zero limit inherits and is checked only when written reports
// that its key was given.
func (v *validator) sandboxLimits(path string, s SandboxConfig, written func(key string) bool) {
	top := written == nil
	given := func(key string, zero bool) bool { return !zero || top || written(key) }
	hint := func(key string) string {
		if top {
			return ""
		}
		return "; omit the key to inherit sandbox." + key
	}
	if given("memory", s.Memory == 0) && s.Memory < MinSandboxMemory {
		v.invalid(path+".memory", "%s is below the minimum of %s%s", s.Memory, MinSandboxMemory, hint("memory"))
	}
	if given("processes", s.Processes == 0) && s.Processes < MinSandboxProcesses {
		v.invalid(path+".processes", "%d is below the minimum of %d%s", s.Processes, MinSandboxProcesses, hint("processes"))
	}
	if given("tmp_size", s.TmpSize == 0) && s.TmpSize < MinSandboxTmpSize {
		v.invalid(path+".tmp_size", "%s is below the minimum of %s%s", s.TmpSize, MinSandboxTmpSize, hint("tmp_size"))
	}
	switch cpu := s.CPU; {
	case cpu > MaxSandboxCPU:
		v.invalid(path+".cpu", "%g cores is more than the maximum of %d", cpu, MaxSandboxCPU)
	case cpu > 0:
	case cpu == 0 && !given("cpu", true):
		// Inherited.
	case cpu == 0 && top:
		// Not limited.
	case cpu == 0:
		v.invalid(path+".cpu", "must be more than 0%s (only the top level can leave the CPU not limited, with 0)", hint("cpu"))
	case top:
		v.invalid(path+".cpu", "%g is not a number of cores; want more than 0, or 0 for no limit", cpu)
	default:
		v.invalid(path+".cpu", "%g is not a number of cores; want more than 0", cpu)
	}
}

// sandboxPaths checks the read-only paths of a plugin, at path, after
// [resolveSandboxPaths].
func (v *validator) sandboxPaths(path string, paths []string) {
	seen := map[string]bool{}
	for j, p := range paths {
		at := fmt.Sprintf("%s[%d]", path, j)
		clean := filepath.Clean(p)
		switch {
		case p == "":
			v.invalid(at, "is empty")
			continue
		case climbs(clean):
			v.invalid(at, "%s leaves the configuration file's directory through \"..\"; give the absolute path", quoteValue(p))
			continue
		case !filepath.IsAbs(p):
			v.invalid(at, "%s is not an absolute path", quoteValue(p))
			continue
		case clean == "/":
			v.invalid(at, "%s is the whole file system; give the files and directories the plugin needs", quoteValue(p))
			continue
		case seen[clean]:
			v.invalid(at, "%s is listed twice", quoteValue(p))
			continue
		}
		seen[clean] = true
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			v.invalid(at, "%s does not exist", p)
		} else if err != nil {
			v.invalid(at, "cannot read %s: %v", p, errors.Unwrap(err))
		}
	}
}
