package memstore

import (
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(_ testing.TB, now func() time.Time) store.Store { return New(now) })
}
