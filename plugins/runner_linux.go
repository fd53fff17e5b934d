package plugins

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinSocket opens the socket at path in the plugin's socket directory
// (without following a symbolic link) and returns a path that names that
// very socket for as long as the descriptor stays open: go-plugin dials
// the address again whenever its connection breaks, and the plugin may
// have replaced what its directory holds by then.
func (r *sandboxRunner) pinSocket(path string) (string, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(fd)
		return "", fmt.Errorf("%s is not a socket", path)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pinned = append(r.pinned, fd)
	return "/proc/self/fd/" + strconv.Itoa(fd), nil
}

// unpin closes the pinned descriptors.
func (r *sandboxRunner) unpin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fd := range r.pinned {
		unix.Close(fd)
	}
	r.pinned = nil
}
