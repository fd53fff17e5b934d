package wire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/llm"
)

func TestAPIErrorRedactsKey(t *testing.T) {
	e := APIError("p", 401, "auth sk-abc", "bad key sk-abc", nil, time.Time{}, "sk-abc")
	if strings.Contains(e.Error(), "sk-abc") || !errors.Is(e, llm.ErrAuth) {
		t.Fatalf("APIError = %v", e)
	}
}

func TestWrapErrKeepsContextAndRedacts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WrapErr(ctx, errors.New("dial with key sk-abc failed"), "sk-abc")
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "sk-abc") {
		t.Fatalf("WrapErr = %v", err)
	}
}

func TestExcerptAndToolCall(t *testing.T) {
	if got := Excerpt(strings.Repeat("é", 200)); len(got) > 260 || !strings.HasSuffix(got, "…") {
		t.Fatalf("Excerpt = %q", got)
	}
	if _, err := ToolCall("tool call", "", "x", "{}"); !errors.Is(err, llm.ErrMalformedStream) {
		t.Fatalf("ToolCall without id: %v", err)
	}
	tc, err := ToolCall("tool call", "1", "x", `{"a":1}`)
	if err != nil || tc.Name != "x" || string(tc.Arguments) != `{"a":1}` {
		t.Fatalf("ToolCall = %+v, %v", tc, err)
	}
}
