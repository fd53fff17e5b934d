//go:build !linux

package plugins

import "errors"

// pinSocket is never reached: no plugin is contained on this system.
func (r *sandboxRunner) pinSocket(string) (string, error) {
	return "", errors.New("plugins are not contained on this system")
}

func (r *sandboxRunner) unpin() {}
