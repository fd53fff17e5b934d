package userauth

import "strings"

// LookupEmail returns the one user whose Email is email, compared without
// regard to ASCII case (the domain part of an address is case-insensitive,
// and users do not expect the local part to be otherwise). An address
// shared by several users names none of them: ok is false, so that a hint
// never picks one of two people by chance.
func (d *Directory) LookupEmail(email string) (User, bool) {
	if d == nil || email == "" {
		return User{}, false
	}
	var (
		found User
		n     int
	)
	for _, u := range d.users {
		if u.Email != "" && strings.EqualFold(u.Email, email) {
			found = u
			n++
		}
	}
	if n != 1 {
		return User{}, false
	}
	return found, true
}
