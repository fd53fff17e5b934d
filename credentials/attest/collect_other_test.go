//go:build !linux

package attest

import (
	"context"
	"errors"
	"os"
	"testing"
)

func TestCollectUnsupported(t *testing.T) {
	ev, err := Collect(context.Background(), Request{PID: os.Getpid()})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Collect = %v, want ErrUnsupported", err)
	}
	if ev != (Evidence{}) {
		t.Errorf("Collect returned evidence %+v with an error", ev)
	}
}
