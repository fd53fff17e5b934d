package clientid_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
)

func Example() {
	ctx := context.Background()
	m, err := clientid.New(clientid.Config{
		Workloads: []clientid.Workload{{
			Name:        "research",
			SPIFFEID:    credentials.MustParseIdentity("spiffe://host.example/agent/research"),
			ClientName:  "Research agent",
			MetadataURL: "https://host.example/clients/research.json",
			JWKSURI:     "https://host.example/clients/research/jwks.json",
		}},
		Servers: map[string]clientid.ServerConfig{
			"https://legacy.example": {Mode: clientid.ModeStatic,
				Static: map[string]clientid.StaticClient{"research": {ClientID: "0oa1research"}}},
		},
	})
	if err != nil {
		panic(err)
	}
	// The host serves m.Handler() at https://host.example.

	for _, md := range []*oauth.ServerMetadata{
		{Issuer: "https://trusting.example", TokenEndpointAuthMethodsSupported: []string{"spiffe_jwt", "private_key_jwt"}},
		{Issuer: "https://mcp-as.example", ClientIDMetadataDocumentSupported: true},
		{Issuer: "https://legacy.example"},
	} {
		id, err := m.Resolve(ctx, md, "research")
		if err != nil {
			panic(err)
		}
		fmt.Println(md.Issuer, id.Mode, id.ClientID, id.UsesSVID())
	}

	doc, err := m.Document(ctx, "research")
	if err != nil {
		panic(err)
	}
	out, _ := json.MarshalIndent(doc, "", "  ")
	fmt.Println(string(out))
	// Output:
	// https://trusting.example spiffe spiffe://host.example/agent/research true
	// https://mcp-as.example cimd https://host.example/clients/research.json false
	// https://legacy.example static 0oa1research false
	// {
	//   "client_id": "https://host.example/clients/research.json",
	//   "client_name": "Research agent",
	//   "token_endpoint_auth_method": "private_key_jwt",
	//   "grant_types": [
	//     "client_credentials",
	//     "urn:ietf:params:oauth:grant-type:token-exchange",
	//     "urn:ietf:params:oauth:grant-type:jwt-bearer"
	//   ],
	//   "jwks_uri": "https://host.example/clients/research/jwks.json",
	//   "spiffe_id": "spiffe://host.example/agent/research"
	// }
}
