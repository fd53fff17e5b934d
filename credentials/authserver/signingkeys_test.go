package authserver

import (
	"testing"
	"time"
)

// TestSigningKeys: a new server has a current key and a next one a key
// period later; after the period the next key is current, the old one
// retired until its grace ends, and a new next key is published. The
// keys listed are the keys of the JWK Set.
func TestSigningKeys(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.KeyPeriod = time.Hour })
	keys := e.srv.SigningKeys()
	if len(keys) != 2 || keys[0].State != KeyCurrent || keys[1].State != KeyNext ||
		!keys[1].Activates.Equal(keys[0].Activates.Add(time.Hour)) || !keys[0].Retires.IsZero() {
		t.Fatalf("a new server's keys: %+v", keys)
	}
	first, second := keys[0].KID, keys[1].KID
	e.clock.Advance(61 * time.Minute)
	if err := e.srv.keys.refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	keys = e.srv.SigningKeys()
	if len(keys) != 3 {
		t.Fatalf("after a rotation: %+v", keys)
	}
	if k := keys[0]; k.KID != first || k.State != KeyRetired || !k.Retires.After(e.clock.Now()) {
		t.Errorf("the replaced key: %+v", k)
	}
	if k := keys[1]; k.KID != second || k.State != KeyCurrent {
		t.Errorf("the key that took over: %+v", k)
	}
	if k := keys[2]; k.State != KeyNext || !k.Activates.After(e.clock.Now()) {
		t.Errorf("the new next key: %+v", k)
	}
	for _, k := range keys {
		if _, err := e.srv.keys.publicKey(e.ctx, k.KID); err != nil {
			t.Errorf("key %s is listed but not published: %v", k.KID, err)
		}
	}
}
