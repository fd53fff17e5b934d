package config

import (
	"fmt"
	"slices"
)

// ConsoleConfig is the console section. The host serves its web console at
// <issuer>/console/ whenever users can sign in (auth.users): a signed-in
// user sees their own tasks and approval requests there. The admins see
// everything (agents, every task and request, the audit log, the trust
// domain) and may quarantine and release agents.
type ConsoleConfig struct {
	// Admins are the users (names of auth.users) who operate the host in
	// the console.
	Admins []string `json:"admins,omitempty"`
}

// IsZero reports whether the section names no admin (it is then left out
// of the canonical form).
func (c ConsoleConfig) IsZero() bool { return len(c.Admins) == 0 }

// IsAdmin reports whether user is one of the console's admins.
func (c ConsoleConfig) IsAdmin(user string) bool {
	return user != "" && slices.Contains(c.Admins, user)
}

// console checks that every admin is a distinct user of auth.users.
func (v *validator) console() {
	seen := map[string]int{}
	for i, name := range v.c.Console.Admins {
		path := fmt.Sprintf("console.admins[%d]", i)
		if name == "" {
			v.invalid(path, "is empty; name a user of auth.users")
			continue
		}
		if j, dup := seen[name]; dup {
			v.invalid(path, "user %s is already an admin at console.admins[%d]", quoteValue(name), j)
			continue
		}
		seen[name] = i
		if !slices.ContainsFunc(v.c.Auth.Users, func(u UserConfig) bool { return u.Name == name }) {
			if len(v.c.Auth.Users) == 0 {
				v.invalid(path, "%s cannot sign in: the console needs users (auth.users), and admins are among them", quoteValue(name))
			} else {
				v.invalid(path, "%s is not a user of auth.users", quoteValue(name))
			}
		}
	}
}
