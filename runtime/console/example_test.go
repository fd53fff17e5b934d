package console_test

import (
	"fmt"

	"github.com/agenthost/agenthost/runtime/console"
)

// The console's client is registered at the authorization server with
// this redirect URI and these scopes.
func ExampleRedirectURI() {
	fmt.Println(console.RedirectURI("https://agents.example.com"))
	fmt.Println(console.Scopes)
	// Output:
	// https://agents.example.com/console/callback
	// [openid profile]
}
