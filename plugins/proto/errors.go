package pluginpb

import "errors"

// Errors a Host implementation returns (wrapped with detail). The host's
// gRPC layer turns each into its status code; any other error becomes
// Internal with no detail, so nothing internal reaches the plugin.
var (
	ErrPermissionDenied = errors.New("permission denied") // codes.PermissionDenied
	ErrNotFound         = errors.New("not found")         // codes.NotFound
	ErrInvalidArgument  = errors.New("invalid argument")  // codes.InvalidArgument
	ErrUnavailable      = errors.New("unavailable")       // codes.Unavailable
	ErrUnimplemented    = errors.New("not implemented")   // codes.Unimplemented
)
