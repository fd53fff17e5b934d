package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDetectCgroups(t *testing.T) {
	dir := t.TempDir()
	v2 := filepath.Join(dir, "unified")
	v1mem := filepath.Join(dir, "memory")
	v1pids := filepath.Join(dir, "pids")
	mountinfo := filepath.Join(dir, "mountinfo")
	own := filepath.Join(dir, "cgroup")
	tests := []struct {
		name      string
		mountinfo string
		cgroup    string
		files     map[string]string
		version   int
		parent    string
		wantErr   string
	}{
		{
			name:      "v2 delegated group with the controllers",
			mountinfo: "41 31 0:38 / " + v2 + " rw,relatime - cgroup2 cgroup2 rw\n",
			cgroup:    "0::/user.slice/agenthost.service\n",
			files: map[string]string{
				"unified/user.slice/agenthost.service/cgroup.controllers":     "cpuset cpu io memory pids\n",
				"unified/user.slice/agenthost.service/cgroup.subtree_control": "",
				"unified/user.slice/agenthost.service/cgroup.type":            "domain\n",
				"unified/user.slice/agenthost.service/cgroup.procs":           "4242\n",
				"unified/user.slice/agenthost.service/host/cgroup.procs":      "",
			},
			version: 2, parent: "unified/user.slice/agenthost.service",
		},
		{
			name:      "v2 without the pids controller, v1 hierarchies writable",
			mountinfo: "41 31 0:38 / " + v2 + " rw - cgroup2 cgroup2 rw\n35 31 0:32 / " + v1mem + " rw - cgroup cgroup rw,memory\n39 31 0:36 / " + v1pids + " rw - cgroup cgroup rw,pids\n",
			cgroup:    "4:memory:/session/1\n8:pids:/\n0::/\n",
			files: map[string]string{
				"unified/cgroup.controllers":     "memory cpu\n",
				"unified/cgroup.subtree_control": "",
				"memory/session/1/cgroup.procs":  "",
				"pids/cgroup.procs":              "",
			},
			version: 1, parent: "memory/session/1",
		},
		{
			name:      "no cgroup file system",
			mountinfo: "23 1 0:22 / /proc rw - proc proc rw\n",
			cgroup:    "0::/\n",
			wantErr:   "cgroup v1: the host may not create groups",
		},
		{
			name:      "v2 missing a controller",
			mountinfo: "41 31 0:38 / " + v2 + " rw - cgroup2 cgroup2 rw\n",
			cgroup:    "0::/\n",
			files:     map[string]string{"unified/cgroup.controllers": "hugetlb\n"},
			wantErr:   "the controller memory is not available",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(v2)
			os.RemoveAll(v1mem)
			os.RemoveAll(v1pids)
			writeTestFile(t, mountinfo, tt.mountinfo)
			writeTestFile(t, own, tt.cgroup)
			for name, content := range tt.files {
				writeTestFile(t, filepath.Join(dir, name), content)
			}
			m, err := detectCgroups(mountinfo, own, 4242)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("detect = %+v, %v; want error %q", m, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctrl := ""
			if tt.version == 1 {
				ctrl = "memory"
			}
			if m.version != tt.version || m.parents[ctrl] != filepath.Join(dir, tt.parent) {
				t.Fatalf("manager = %+v", m)
			}
			if tt.version == 2 {
				b, _ := os.ReadFile(filepath.Join(dir, tt.parent, "cgroup.subtree_control"))
				if string(b) != "+memory +pids +cpu" {
					t.Errorf("subtree_control = %q", b)
				}
				b, _ = os.ReadFile(filepath.Join(dir, tt.parent, "host", "cgroup.procs"))
				if string(b) != "4242" {
					t.Errorf("the host was not moved into a leaf: %q", b)
				}
			}
		})
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/sys/fs/cgroup/with\040space`); got != "/sys/fs/cgroup/with space" {
		t.Errorf("unescape = %q", got)
	}
}

func TestCgroupTag(t *testing.T) {
	if got := cgroupTag("data/../x y:z-ok_" + strings.Repeat("a", 40)); got != "dataxyz-ok_"+strings.Repeat("a", 21) {
		t.Errorf("tag = %q", got)
	}
}
