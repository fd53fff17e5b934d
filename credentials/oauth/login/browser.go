package login

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// OpenBrowser opens url in the user's browser: with the program $BROWSER
// names when it is set (a colon-separated list is tried in order, as
// xdg-utils read it), else with xdg-open (Linux and other Unix systems) or
// open (macOS). It returns once the program has started and does not wait
// for it; its output is discarded.
func OpenBrowser(url string) error {
	var progs []string
	if b := os.Getenv("BROWSER"); b != "" {
		for _, p := range strings.Split(b, ":") {
			if p = strings.TrimSpace(p); p != "" {
				progs = append(progs, p)
			}
		}
	}
	if len(progs) == 0 {
		switch runtime.GOOS {
		case "darwin":
			progs = []string{"open"}
		case "windows":
			return errors.New("opening a browser is not supported on Windows")
		default:
			progs = []string{"xdg-open"}
		}
	}
	var errs []error
	for _, p := range progs {
		cmd := exec.Command(p, url)
		if err := cmd.Start(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		go func() { _ = cmd.Wait() }()
		return nil
	}
	return errors.Join(errs...)
}
