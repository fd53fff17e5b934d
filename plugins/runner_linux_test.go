package plugins

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/plugins/sandbox"
)

// listen serves a unix socket at path that writes said to each connection.
func listen(t *testing.T, path, said string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(said))
			c.Close()
		}
	}()
}

func dialSays(t *testing.T, path string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	defer c.Close()
	b := make([]byte, 64)
	n, _ := c.Read(b)
	return string(b[:n])
}

// TestRunnerAddresses: the host dials only a socket a contained plugin
// made in its socket directory, and always that very socket; it never
// follows a symbolic link the plugin planted there.
func TestRunnerAddresses(t *testing.T) {
	dir := t.TempDir()
	socketDir := filepath.Join(dir, "plugin-dir")
	if err := os.Mkdir(socketDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A socket of the host's that the plugin must not reach through it.
	admin := filepath.Join(dir, "admin.sock")
	listen(t, admin, "admin")
	listen(t, filepath.Join(socketDir, "plugin1"), "plugin")
	if err := os.Symlink(admin, filepath.Join(socketDir, "plugin2")); err != nil {
		t.Fatal(err)
	}
	r := &sandboxRunner{cfg: Config{Name: "p"}, socketDir: socketDir}
	defer r.unpin()

	for _, tt := range []struct{ network, addr string }{
		{"tcp", "127.0.0.1:22"},
		{"unix", admin},
		{"unix", pluginSocketDir + "/../admin.sock"},
		{"unix", pluginSocketDir + "/plugin2"}, // the planted link
		{"unix", pluginSocketDir + "/missing"},
		{"unix", pluginSocketDir + "/"},
	} {
		if n, a, err := r.PluginToHost(tt.network, tt.addr); err == nil {
			t.Errorf("PluginToHost(%s, %s) = %s %s, want an error", tt.network, tt.addr, n, a)
		}
	}

	n, a, err := r.PluginToHost("unix", pluginSocketDir+"/plugin1")
	if err != nil || n != "unix" || !strings.HasPrefix(a, "/proc/self/fd/") || dialSays(t, a) != "plugin" {
		t.Fatalf("PluginToHost(plugin1) = %s %s, %v", n, a, err)
	}
	// The plugin puts a link in its socket's place: a reconnection still
	// reaches the socket it named.
	if err := os.Rename(filepath.Join(socketDir, "plugin2"), filepath.Join(socketDir, "plugin1")); err != nil {
		t.Fatal(err)
	}
	if got := dialSays(t, a); got != "plugin" {
		t.Fatalf("after the swap the host reached %q", got)
	}

	if n, a, err := r.HostToPlugin("unix", socketDir+"/plugin9"); err != nil || n != "unix" || a != pluginSocketDir+"/plugin9" {
		t.Errorf("HostToPlugin = %s %s, %v", n, a, err)
	}

	// An uncontained plugin sees the host's paths: nothing to translate.
	plain := &sandboxRunner{cfg: Config{Name: "p", Sandbox: sandbox.Policy{Level: sandbox.LevelNone}}, socketDir: socketDir}
	if n, a, err := plain.PluginToHost("unix", socketDir+"/plugin1"); err != nil || n != "unix" || a != socketDir+"/plugin1" {
		t.Errorf("uncontained PluginToHost = %s %s, %v", n, a, err)
	}
}
