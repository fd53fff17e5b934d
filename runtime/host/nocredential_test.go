package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// recorderAgent writes down everything it receives (its environment, its
// arguments, the task, and every Host response, proto-encoded) and sends it
// back as a thought starting with recordPrefix (its sandbox lets it write
// nowhere the host would see), exercising each Host method the mediator
// serves.
type recorderAgent struct{}

func (recorderAgent) Describe() sdk.Description { return sdk.Description{Name: "recorder"} }

func (recorderAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	var rec bytes.Buffer
	rec.WriteString(strings.Join(os.Environ(), "\\n") + "\\n")
	rec.WriteString(strings.Join(os.Args, " ") + "\\n")
	rec.WriteString(t.ID + "\\n" + t.Input + "\\n")
	for k, v := range t.Metadata {
		rec.WriteString(k + "=" + v + "\\n")
	}
	add := func(m proto.Message) {
		b, _ := proto.Marshal(m)
		rec.Write(b)
		rec.WriteString("\\n" + fmt.Sprint(m) + "\\n")
	}
	tools, err := t.ListTools(ctx)
	if err != nil {
		return "", err
	}
	add(&pluginpb.ListToolsResponse{Tools: tools})
	resp, err := t.Complete(ctx, &pluginpb.CompleteRequest{Model: "gpt",
		Messages: []*pluginpb.Message{{Role: pluginpb.Role_ROLE_USER, Text: t.Input}}})
	if err != nil {
		return "", err
	}
	add(resp)
	res, err := t.CallTool(ctx, "clock/now", map[string]any{})
	if err != nil {
		return "", err
	}
	rec.WriteString(res.Text + "\\n")
	if remote := os.Getenv("REMOTE_TOOL"); remote != "" {
		res, err := t.CallTool(ctx, remote, map[string]any{"query": "plans"})
		if err != nil {
			return "", err
		}
		rec.WriteString("remote: " + res.Text + "\\n")
	}
	if err := t.Think(recordPrefix + rec.String()); err != nil {
		return "", err
	}
	return resp.GetMessage().GetText(), nil
}

// recordPrefix starts the thought in which recorderAgent sends its record.
const recordPrefix = "record:\n"

var (
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+`)
	// Private key material. A certificate is public: go-plugin's AutoMTLS
	// gives the plugin the host's client certificate to pin, by design.
	pemPattern = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
)

// TestNoCredentialReachesThePlugin: the host calls a model with a real API
// key on the plugin's behalf; nothing the plugin receives holds that key, a
// JWT, PEM key material, or a secret from the host's environment.
func TestNoCredentialReachesThePlugin(t *testing.T) {
	const apiKey = "sk-test-4f1d9c2b7e6a5d3c2b1a0f9e8d7c6b5a"
	t.Setenv("TEST_MODEL_API_KEY", apiKey)
	t.Setenv("HOST_ONLY_SECRET", "hunter2-host-only")

	var sawKey bool
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawKey = r.Header.Get("Authorization") == "Bearer "+apiKey
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": "the answer is 42"}}},
			"usage": map[string]any{"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
		})
	}))
	defer provider.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Models = map[string]config.ModelConfig{
		"gpt": {Provider: config.ProviderOpenAI, Model: "gpt-test", BaseURL: provider.URL, APIKeyEnv: "TEST_MODEL_API_KEY"},
	}
	cfg.Agents = []config.AgentConfig{{Name: "recorder", Path: exe, Model: "gpt", Tools: []string{"clock/now"},
		Env: map[string]string{testAgentEnv: "recorder"}}}

	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(t.TempDir(), "data")
	h, err := New(ctx, Options{Config: cfg, DataDir: dir, Stderr: io.Discard})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	var final, failure, record string
	for {
		err = h.RunTask(wctx, localapi.TaskRequest{Agent: "recorder", Input: "what is the answer?"}, func(ev localapi.TaskEvent) error {
			switch ev.Type {
			case "thought":
				if r, ok := strings.CutPrefix(ev.Text, recordPrefix); ok {
					record = r
				}
			case "final":
				final = ev.Text
			case "error":
				failure = ev.Text
			}
			return nil
		})
		if err == nil || wctx.Err() != nil || !strings.Contains(err.Error(), "not running") {
			break
		}
		time.Sleep(20 * time.Millisecond) // the supervisor is still starting the plugin
	}
	if err != nil || failure != "" || final != "the answer is 42" {
		t.Fatalf("task: final %q, failure %q, err %v", final, failure, err)
	}
	if !sawKey {
		t.Fatal("the host did not call the model with its API key")
	}

	got := []byte(record)
	if len(got) < 100 {
		t.Fatalf("the plugin recorded only %d bytes", len(got))
	}
	for what, bad := range map[string]func([]byte) bool{
		"the model API key":          func(b []byte) bool { return bytes.Contains(b, []byte(apiKey)) },
		"a host-only secret":         func(b []byte) bool { return bytes.Contains(b, []byte("hunter2-host-only")) },
		"a JWT":                      jwtPattern.Match,
		"PEM key material":           pemPattern.Match,
		"the API key's env var name": func(b []byte) bool { return bytes.Contains(b, []byte("TEST_MODEL_API_KEY")) },
	} {
		if bad(got) {
			t.Errorf("the plugin received %s:\n%s", what, got)
		}
	}
	// The detectors themselves work.
	if !jwtPattern.MatchString("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig") || !pemPattern.MatchString("-----BEGIN EC PRIVATE KEY-----") || !pemPattern.MatchString("-----BEGIN PRIVATE KEY-----") {
		t.Fatal("credential detectors are broken")
	}
}
