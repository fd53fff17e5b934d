package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

// consoleUsers is an auth section with the users alice and bob.
const consoleUsers = "auth:\n  users:\n" +
	"    - {name: alice, password_hash: \"$argon2id$v=19$m=19456,t=2,p=1$DHDzDYdY/m6Tmbojtxx2pA$x3Mm7bOj2yu4rEzgMoY7+I0Sj2Pey3W4apQf+vitBSQ\"}\n" +
	"    - {name: bob, password_hash: \"$argon2id$v=19$m=19456,t=2,p=1$DHDzDYdY/m6Tmbojtxx2pA$x3Mm7bOj2yu4rEzgMoY7+I0Sj2Pey3W4apQf+vitBSQ\"}\n"

func TestConsole(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	c, err := config.Parse(file, []byte("version: 1\n"+consoleUsers+"console: {admins: [alice]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Console.IsAdmin("alice") || c.Console.IsAdmin("bob") || c.Console.IsAdmin("") {
		t.Errorf("admins %q: alice admin %v, bob admin %v", c.Console.Admins, c.Console.IsAdmin("alice"), c.Console.IsAdmin("bob"))
	}
	canon, err := c.CanonicalJSON()
	if err != nil || !strings.Contains(string(canon), `"console":{"admins":["alice"]}`) {
		t.Errorf("canonical form %s, %v", canon, err)
	}

	// Without admins the section is left out of the canonical form, so
	// the digest of a config without it did not change.
	plain, err := config.Parse(file, []byte("version: 1\n"+consoleUsers))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := config.Parse(file, []byte("version: 1\n"+consoleUsers+"console: {admins: []}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Digest() != plain.Digest() {
		t.Error("an empty console section changed the digest")
	}
	if canon, _ := plain.CanonicalJSON(); strings.Contains(string(canon), "console") {
		t.Errorf("the canonical form of a config without console names it: %s", canon)
	}
	if c.Digest() == plain.Digest() {
		t.Error("the admins are not in the digest")
	}
}

func TestConsoleProblems(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	tests := []struct{ name, src, path, want string }{
		{"not a user", consoleUsers + "console: {admins: [carol]}\n", "console.admins[0]", `"carol" is not a user of auth.users`},
		{"no users", "console: {admins: [alice]}\n", "console.admins[0]", "the console needs users (auth.users)"},
		{"twice", consoleUsers + "console: {admins: [alice, bob, alice]}\n", "console.admins[2]", "already an admin at console.admins[0]"},
		{"empty name", consoleUsers + "console: {admins: ['']}\n", "console.admins[0]", "is empty"},
		{"unknown key", consoleUsers + "console: {operators: [alice]}\n", "console.operators", "unknown"},
		{"not a list", consoleUsers + "console: {admins: alice}\n", "console.admins", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(file, []byte("version: 1\n"+tt.src))
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want config errors, got %v", err)
			}
			found := false
			for _, e := range errs {
				if e.Path == tt.path && strings.Contains(e.Message, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem at %s saying %q: %v", tt.path, tt.want, err)
			}
		})
	}
}
