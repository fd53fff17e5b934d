package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// BenchmarkMediatedCall: one allowed tool call through the mediator (an
// in-memory auditor, a tool that echoes), without an observer, with the
// metrics, and with the metrics and a span per call (to an exporter that
// drops it), to show what observing a call adds:
//
//	go test -run '^$' -bench MediatedCall -benchmem ./runtime/telemetry
func BenchmarkMediatedCall(b *testing.B) {
	for _, bb := range []struct {
		name string
		tel  func(b *testing.B) *Telemetry
	}{
		{"none", func(*testing.B) *Telemetry { return nil }},
		{"metrics", func(b *testing.B) *Telemetry { return newTest(b, Config{}) }},
		{"metrics+spans", func(b *testing.B) *Telemetry {
			return newTest(b, Config{exporter: tracetest.NewNoopExporter()})
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var obs mediator.Observer
			if tel := bb.tel(b); tel != nil {
				obs = tel
			}
			h := newMediator(b, obs, discardAuditor{})
			ctx := context.Background()
			req := &pluginpb.CallToolRequest{TaskId: "t1", Tool: "echo/say", ArgumentsJson: `{"x":1}`}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.CallTool(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
