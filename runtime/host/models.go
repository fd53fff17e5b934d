package host

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/agenthost/agenthost/llm"
	llmanthropic "github.com/agenthost/agenthost/llm/anthropic"
	llmoffline "github.com/agenthost/agenthost/llm/offline"
	llmopenai "github.com/agenthost/agenthost/llm/openai"
	"github.com/agenthost/agenthost/runtime/config"
)

// newModels builds the configured models. API keys are read here, from the
// host's environment or a file, and stay in the host.
func (h *Host) newModels() (map[string]llm.Model, error) {
	cfgs := h.cfg.Models
	if len(cfgs) == 0 {
		cfgs = map[string]config.ModelConfig{"default": {Provider: config.ProviderOffline}}
	}
	aliases := make([]string, 0, len(cfgs))
	for a := range cfgs {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	out := map[string]llm.Model{}
	client := &http.Client{Timeout: 5 * time.Minute}
	for _, alias := range aliases {
		mc := cfgs[alias]
		key, err := apiKey(mc)
		if err != nil {
			return nil, fmt.Errorf("host: model %s: %w", alias, err)
		}
		log := h.log.With("component", "llm", "model", alias)
		switch mc.Provider {
		case config.ProviderOffline:
			out[alias] = llmoffline.New(llmoffline.Config{Logger: log})
		case config.ProviderOpenAI:
			m, err := llmopenai.New(llmopenai.Config{BaseURL: mc.BaseURL, APIKey: key, DefaultModel: mc.Model, HTTPClient: client, Logger: log})
			if err != nil {
				return nil, fmt.Errorf("host: model %s: %w", alias, err)
			}
			out[alias] = m
		case config.ProviderAnthropic:
			m, err := llmanthropic.New(llmanthropic.Config{BaseURL: mc.BaseURL, APIKey: key, DefaultModel: mc.Model, HTTPClient: client, Logger: log})
			if err != nil {
				return nil, fmt.Errorf("host: model %s: %w", alias, err)
			}
			out[alias] = m
		default:
			return nil, fmt.Errorf("host: model %s: unknown provider %q", alias, mc.Provider)
		}
	}
	if _, ok := out["default"]; !ok {
		out["default"] = llmoffline.New(llmoffline.Config{Logger: h.log.With("component", "llm", "model", "default")})
	}
	return out, nil
}

func apiKey(mc config.ModelConfig) (string, error) {
	switch {
	case mc.APIKeyEnv != "":
		v := os.Getenv(mc.APIKeyEnv)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", mc.APIKeyEnv)
		}
		return v, nil
	case mc.APIKeyFile != "":
		b, err := os.ReadFile(mc.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("read api key file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}
