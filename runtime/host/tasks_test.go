package host

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func waitCtx(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestRunTasks(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		cancel  bool // cancel the parent after start
		tasks   []Task
		wantErr string
	}{
		{
			name:   "cancellation is a clean exit",
			cancel: true,
			tasks:  []Task{{"a", waitCtx}, {"b", func(ctx context.Context) error { <-ctx.Done(); return nil }}},
		},
		{
			name:    "first error cancels the others",
			tasks:   []Task{{"a", waitCtx}, {"b", func(context.Context) error { return boom }}},
			wantErr: "host: task b: boom",
		},
		{
			name:    "panic is recovered",
			tasks:   []Task{{"a", waitCtx}, {"p", func(context.Context) error { panic("kaput") }}},
			wantErr: "host: task p: panic: kaput",
		},
		{
			name:    "a task that returns early stops the host",
			tasks:   []Task{{"a", waitCtx}, {"quitter", func(context.Context) error { return nil }}},
			wantErr: "host: task quitter stopped unexpectedly",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- RunTasks(ctx, tt.tasks...) }()
			if tt.cancel {
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("RunTasks did not return")
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("RunTasks = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("RunTasks = %v, want prefix %q", err, tt.wantErr)
			}
			if tt.name == "first error cancels the others" && !errors.Is(err, boom) {
				t.Fatalf("error %v does not wrap the cause", err)
			}
		})
	}
}
