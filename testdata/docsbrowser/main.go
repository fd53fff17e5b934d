// Command docsbrowser is the browser TestDocsCommands gives agenthost
// login (as $BROWSER): it is started with the authorization URL, signs in
// as $DOCS_BROWSER_USER with $DOCS_BROWSER_PASSWORD, allows on the consent
// page and follows the redirect back to login's listener. What goes wrong
// it appends to the file $DOCS_BROWSER_LOG names, for the test to report.
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/astest"
)

func main() {
	if err := run(); err != nil {
		msg := fmt.Sprintf("docsbrowser %v: %v\n", os.Args[1:], err)
		if p := os.Getenv("DOCS_BROWSER_LOG"); p != "" {
			if f, ferr := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); ferr == nil {
				_, _ = f.WriteString(msg)
				_ = f.Close()
			}
		}
		fmt.Fprint(os.Stderr, msg)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("want one argument, the authorization URL")
	}
	authURL := os.Args[1]
	u, err := url.Parse(authURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := astest.NewBrowser(u.Query().Get("redirect_uri"), os.Getenv("DOCS_BROWSER_USER"), os.Getenv("DOCS_BROWSER_PASSWORD"), "allow")
	back, err := b.Authorize(ctx, authURL)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, back.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the redirect back to login answered %s", resp.Status)
	}
	return nil
}
