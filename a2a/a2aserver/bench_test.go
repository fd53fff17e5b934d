package a2aserver_test

import (
	"context"
	"testing"

	"github.com/a2aproject/a2a-go/a2a"
)

// BenchmarkSendMessage is one message/send round trip over loopback HTTP
// with the a2a-go client: token check (cached after the first), JSON-RPC,
// a task created, run by a trivial Runner and stored, the completed task
// returned.
func BenchmarkSendMessage(b *testing.B) {
	f := newFixture(b)
	cl := f.client("research", f.token("research", "alice", "cli"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := cl.SendMessage(ctx, text("echo"))
		if err != nil {
			b.Fatal(err)
		}
		if task, ok := res.(*a2a.Task); !ok || task.Status.State != a2a.TaskStateCompleted {
			b.Fatalf("result %v", res)
		}
	}
}
