package config_test

import (
	"fmt"

	"github.com/agenthost/agenthost/runtime/config"
)

func ExampleParse() {
	c, err := config.Parse("agenthost.yaml", []byte(`version: 1
trust_domain: example.org
listen:
  address: 127.0.0.1:9000
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.TrustDomain, c.IssuerURL(), c.Identity.SVIDTTL, c.Log.Level)
	// Output: example.org http://127.0.0.1:9000 1h0m0s info
}

func ExampleParse_problems() {
	_, err := config.Parse("agenthost.yaml", []byte(`version: 1
listen:
  address: 0.0.0.0:8420
  bogus: true
log:
  level: loud
`))
	fmt.Println(err)
	// Output:
	// agenthost.yaml:3:12: listen.address: listening on 0.0.0.0:8420 without TLS is refused; configure listen.tls or bind a loopback address
	// agenthost.yaml:4:3: listen.bogus: unknown key "bogus"
	// agenthost.yaml:6:10: log.level: unknown log level "loud"; want one of debug, info, warn, error
}

func ExampleConfig_Validate() {
	c := config.Default()
	c.Listen.Address = "0.0.0.0:8420"
	c.Listen.Issuer = ""
	fmt.Println(c.Validate())
	// Output: listen.address: listening on 0.0.0.0:8420 without TLS is refused; configure listen.tls or bind a loopback address
}
