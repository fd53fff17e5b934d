package consent

import (
	"context"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// Outcomes of a decided request, as [RequestsConfig.OnDecided] is told.
const (
	OutcomeApproved = "approved"
	OutcomeDenied   = "denied"
	OutcomeExpired  = "expired"
)

// decided tells RequestsConfig.OnDecided, when set, of p's outcome by the
// server's answer (code: "" for a grant, else its OAuth error code) and of
// how long p waited. An answer that is no decision of the user's (a
// request redeemed before, say), or a request kept from before Pending
// said when it was asked, is not told.
func (r *Requests) decided(ctx context.Context, p Pending, code string) {
	if r.onDecided == nil || p.Asked.IsZero() {
		return
	}
	var outcome string
	switch code {
	case "":
		outcome = OutcomeApproved
	case oauth.CodeAccessDenied:
		outcome = OutcomeDenied
	case oauth.CodeExpiredToken:
		outcome = OutcomeExpired
	default:
		return
	}
	r.onDecided(ctx, outcome, r.now().Sub(p.Asked))
}
