package authserver

import "strings"

// snapshot counts live records per namespace.
func (m *MemoryStore) snapshot() map[string]int {
	out := map[string]int{}
	for _, ns := range []string{nsRefresh, nsFamilies, nsRevoked, nsCodes} {
		out[ns] = m.count(ns)
	}
	return out
}

func (m *MemoryStore) count(ns string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.data {
		if strings.HasPrefix(k, ns+"\x00") {
			if _, ok := m.live(k); ok {
				n++
			}
		}
	}
	return n
}
