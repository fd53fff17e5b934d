package sdk

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestIsRefused(t *testing.T) {
	refused := fmt.Errorf("sdk: call tool x: %w", status.Error(codes.PermissionDenied, "alice denied the approval"))
	if !IsRefused(refused) {
		t.Fatal("a PermissionDenied call is not refused")
	}
	for _, err := range []error{nil, errors.New("x"), status.Error(codes.Unavailable, "down")} {
		if IsRefused(err) {
			t.Errorf("IsRefused(%v)", err)
		}
	}
}
