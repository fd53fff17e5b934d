package consent_test

import (
	"fmt"
	"net/http"

	"github.com/agenthost/agenthost/consent"
)

// issuerOnly stands in for the authorization server (an
// *authserver.Server) where only its issuer matters.
type issuerOnly struct{ consent.AuthServer }

func (issuerOnly) Issuer() string { return "https://host.example.org" }

// The host mounts the approval pages on the authorization server's origin
// and sends the user to the page of a backchannel request: in an MCP
// URL-mode elicitation, on the console, or from the CLI.
func Example() {
	pages, err := consent.New(consent.Config{Server: issuerOnly{}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(consent.DefaultPath, pages.Handler())

	// The auth_req_id of the backchannel response; the page's URL names
	// the request by its approval ID instead.
	fmt.Println(pages.URL("1c266114-a1be-4252-8ad1-04986c5b9ac1"))
	// Output:
	// https://host.example.org/approve/yjC0WzMiAKcIuP7X-j2JaWkpAnHKE20vxyyBy7lRg10
}
