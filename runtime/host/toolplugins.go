package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/credentials/attest"
	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/plugins"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// toolPluginStart bounds a tool plugin's launch and first listing.
const toolPluginStart = 30 * time.Second

// toolPlugin is one running tool plugin. A plugin found dead on a call is
// started again from the same pinned binary.
type toolPlugin struct {
	cfg plugins.Config
	log *slog.Logger
	// onStart is called after every start of the plugin process.
	onStart func(pid int, prot sandbox.Protections)
	// onRestart is called when the process starts again after an exit.
	onRestart func()

	mu sync.Mutex
	p  *plugins.ToolPlugin
	// cur is p, readable without waiting for a launch that holds mu.
	cur atomic.Pointer[plugins.ToolPlugin]
}

// pid is the running plugin process's id, or 0 when none runs.
func (tp *toolPlugin) pid() int {
	p := tp.cur.Load()
	if p == nil || p.Exited() {
		return 0
	}
	return p.PID()
}

// get returns the running plugin, restarting it if it has exited.
func (tp *toolPlugin) get(ctx context.Context) (*plugins.ToolPlugin, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.p != nil && !tp.p.Exited() {
		return tp.p, nil
	}
	restart := tp.p != nil
	if restart {
		tp.log.Warn("tool plugin exited; starting it again")
	}
	ctx, cancel := context.WithTimeout(ctx, toolPluginStart)
	defer cancel()
	p, err := plugins.LaunchTools(ctx, tp.cfg)
	if err != nil {
		return nil, fmt.Errorf("host: tool plugin %s: %w", tp.cfg.Name, err)
	}
	tp.p = p
	tp.cur.Store(p)
	if tp.onStart != nil {
		tp.onStart(p.PID(), p.Sandbox())
	}
	if restart && tp.onRestart != nil {
		tp.onRestart()
	}
	return p, nil
}

// failed ends p after a call found it unreachable, so that the next call
// starts the plugin again instead of finding the dead connection.
func (tp *toolPlugin) failed(p *plugins.ToolPlugin) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.p == p {
		tp.log.Warn("tool plugin unreachable; it will be started again", slog.Int("pid", p.PID()))
		p.Kill()
	}
}

func (tp *toolPlugin) kill() {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.p != nil {
		tp.p.Kill()
	}
}

// addPluginTools starts every configured tool plugin and adds its tools to
// tools as "<plugin>/<tool>". A plugin's read-only tools need only the
// read scope of the servers that offer them.
func (h *Host) addPluginTools(ctx context.Context, tools map[string]mediator.Tool) error {
	for _, pc := range h.cfg.MCP.Plugins {
		if err := h.addPlugin(ctx, pc, tools); err != nil {
			return err
		}
	}
	return nil
}

func (h *Host) addPlugin(ctx context.Context, pc config.MCPPluginConfig, tools map[string]mediator.Tool) error {
	for name := range tools {
		if strings.HasPrefix(name, pc.Name+"/") {
			return fmt.Errorf("host: tool plugin %s: the host already has tools named %s/…", pc.Name, pc.Name)
		}
	}
	path, err := filepath.Abs(pc.Path)
	if err != nil {
		return fmt.Errorf("host: tool plugin %s: %w", pc.Name, err)
	}
	digest, err := attest.HashFile(ctx, path)
	if err != nil {
		return fmt.Errorf("host: tool plugin %s: %w", pc.Name, err)
	}
	if pc.SHA256 != "" && digest != pc.SHA256 {
		return fmt.Errorf("host: tool plugin %s: %s has SHA-256 %s, the config pins %s", pc.Name, path, digest, pc.SHA256)
	}
	keys := make([]string, 0, len(pc.Env))
	for k := range pc.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+pc.Env[k])
	}
	log := h.log.With("component", "toolplugin")
	sc, _ := h.cfg.PluginSandbox(pc.Name)
	tp := &toolPlugin{
		cfg: plugins.Config{Name: pc.Name, Path: path, SHA256: digest, Env: env, Logger: log,
			Sandbox: sandboxPolicy(sc), Owner: h.sandboxOwner, TxnKeys: h.txnKeys},
		log:       log.With("plugin", pc.Name),
		onStart:   func(pid int, prot sandbox.Protections) { h.recordPluginStart("tool plugin", pc.Name, path, pid, prot) },
		onRestart: func() { h.telemetry.ToolPluginRestarted(pc.Name) },
	}
	p, err := tp.get(ctx)
	if err != nil {
		return err
	}
	h.closers = append(h.closers, tp.kill)
	listing := p.Listing()
	if len(listing.GetTools()) == 0 {
		return fmt.Errorf("host: tool plugin %s offers no tools", pc.Name)
	}
	for _, t := range listing.GetTools() {
		d := t.GetDefinition()
		name := d.GetName()
		if !validToolName(name) {
			return fmt.Errorf("host: tool plugin %s: %q is not a tool name", pc.Name, name)
		}
		full := pc.Name + "/" + name
		if _, dup := tools[full]; dup {
			return fmt.Errorf("host: tool plugin %s lists %q twice", pc.Name, name)
		}
		schema := json.RawMessage(d.GetInputSchemaJson())
		if !json.Valid(schema) {
			return fmt.Errorf("host: tool plugin %s: tool %q has an input schema that is not JSON", pc.Name, name)
		}
		fields, err := txnFields(t.GetTxnFields())
		if err != nil {
			return fmt.Errorf("host: tool plugin %s: tool %q: %w", pc.Name, name, err)
		}
		tools[full] = pluginTool{plugin: tp, name: name, fields: fields,
			def: llm.Tool{Name: full, Description: d.GetDescription(), Parameters: schema}}
		if t.GetReadOnly() {
			h.readOnly[full] = true
		}
	}
	tp.log.Info("tool plugin started", slog.String("name", listing.GetName()), slog.String("version", listing.GetVersion()),
		slog.Int("tools", len(listing.GetTools())), slog.Int("pid", p.PID()))
	return nil
}

// validToolName accepts MCP tool names: 1–128 of letters, digits, '_', '-'
// and '.'.
func validToolName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// txnFields checks the business fields a plugin's tool declares.
func txnFields(fields []string) ([]string, error) {
	seen := map[string]bool{}
	for _, f := range fields {
		switch {
		case f == "" || len(f) > 128:
			return nil, fmt.Errorf("txn field %q is empty or longer than 128 bytes", f)
		case f == pluginpb.TctxTool || f == pluginpb.TctxArgsSHA256:
			return nil, fmt.Errorf("txn field %q is a name the Txn-Token's tctx reserves", f)
		case seen[f]:
			return nil, fmt.Errorf("txn field %q is declared twice", f)
		}
		seen[f] = true
	}
	return fields, nil
}

// pluginTool is a tool served by a tool plugin. The plugin gets the call's
// Txn-Token, which it checks and takes the caller from; never an access
// token.
type pluginTool struct {
	plugin *toolPlugin
	name   string
	def    llm.Tool
	fields []string
}

func (t pluginTool) Definition() llm.Tool { return t.def }

// TxnFields implements mediator.TxnBinder: the fields the plugin declared.
func (t pluginTool) TxnFields() []string { return t.fields }

// Call passes the call's Txn-Token (minted by the mediator, or for a
// hosted MCP server's call by the host) to the plugin; a call without one
// is sent without one, and the plugin refuses it.
func (t pluginTool) Call(ctx context.Context, _ mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	p, err := t.plugin.get(ctx)
	if err != nil {
		return mediator.ToolResult{}, err
	}
	tok, err := mediator.TxnTokenOf(ctx)
	if err != nil {
		return mediator.ToolResult{}, fmt.Errorf("%w: no Txn-Token for the call: %w", pluginpb.ErrUnavailable, err)
	}
	res, err := p.CallTool(ctx, t.name, string(args), tok)
	if err != nil {
		switch {
		case errors.Is(err, plugins.ErrUnavailable):
			t.plugin.failed(p)
		case errors.Is(err, plugins.ErrRefused):
			return mediator.ToolResult{}, fmt.Errorf("%w: %w: %w", pluginpb.ErrPermissionDenied, mediator.ErrTxnToken, err)
		}
		return mediator.ToolResult{}, err
	}
	var text strings.Builder
	for _, ct := range res.GetContent() {
		text.WriteString(ct.GetText())
	}
	return mediator.ToolResult{Text: text.String(), IsError: res.GetIsError()}, nil
}
