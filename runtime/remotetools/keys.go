package remotetools

import (
	"sync"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// workloadKeys are the DPoP key pairs of the host's workloads for the
// tokens they present to remote servers: one set per workload (each
// agent, and the host itself for its gateways), the same for every remote
// it calls (see the package doc).
type workloadKeys struct {
	mu   sync.Mutex
	keys map[string]*dpop.Keys
}

// of returns the keys of workload id, an empty set the first time.
func (k *workloadKeys) of(id credentials.Identity) *dpop.Keys {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string]*dpop.Keys{}
	}
	keys, ok := k.keys[id.String()]
	if !ok {
		keys = dpop.NewKeys()
		k.keys[id.String()] = keys
	}
	return keys
}
