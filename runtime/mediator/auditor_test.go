package mediator

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/runtime/store"
)

// AuditLog is the store log the test auditor appends to.
const AuditLog = "audit"

// StoreAuditor appends each record as JSON to a store log, for tests of
// the mediator (the host gives it the tamper-evident audit log).
type StoreAuditor struct {
	Log store.Log
}

// Record implements [Auditor].
func (a StoreAuditor) Record(ctx context.Context, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("mediator: encode audit record: %w", err)
	}
	if _, err := a.Log.Append(ctx, AuditLog, b); err != nil {
		return fmt.Errorf("mediator: append audit record: %w", err)
	}
	return nil
}
