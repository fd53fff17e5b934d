package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// PendingApproval is a request waiting for a user's decision (a CIBA
// backchannel request of the host's authorization server), as
// `agenthost approvals` lists it.
type PendingApproval struct {
	// ID is the approval ID, which the page URL carries.
	ID             string    `json:"id"`
	User           string    `json:"user"`
	Client         string    `json:"client"`
	BindingMessage string    `json:"binding_message,omitempty"`
	URL            string    `json:"url,omitempty"`
	Created        time.Time `json:"created"`
	Expires        time.Time `json:"expires"`
}

// ApprovalsRequest is the body of POST /v1/approvals: whose pending
// requests to list, named by the operator (Subject) or by the user's own
// access token for the host's task resource (AccessToken), not both.
type ApprovalsRequest struct {
	Subject     string `json:"subject,omitempty"`
	AccessToken string `json:"access_token,omitempty"`
}

// ApprovalsBackend is the approvals part of the host the admin API
// serves. A [Backend] that also implements it gets POST /v1/approvals;
// otherwise it answers 501.
type ApprovalsBackend interface {
	// PendingApprovals lists the requests waiting for the user's decision,
	// oldest first. A refused token is an error wrapping ErrTokenRefused.
	PendingApprovals(ctx context.Context, subject, accessToken string) ([]PendingApproval, error)
}

// maxApprovalsBody caps the body of POST /v1/approvals.
const maxApprovalsBody = 64 << 10

// registerApprovals adds POST /v1/approvals to mux. It is a POST so that
// an access token travels in the body, never in a URL.
func registerApprovals(mux *http.ServeMux, b Backend) {
	ab, _ := b.(ApprovalsBackend)
	mux.HandleFunc("POST /v1/approvals", func(w http.ResponseWriter, r *http.Request) {
		if ab == nil {
			writeError(w, http.StatusNotImplemented, ErrNotSupported.Error())
			return
		}
		var req ApprovalsRequest
		data, err := io.ReadAll(io.LimitReader(r.Body, maxApprovalsBody+1))
		if err != nil || len(data) > maxApprovalsBody || json.Unmarshal(data, &req) != nil {
			writeError(w, http.StatusBadRequest, "the body must be a JSON object {subject} or {access_token}")
			return
		}
		list, err := ab.PendingApprovals(r.Context(), req.Subject, req.AccessToken)
		switch {
		case errors.Is(err, ErrTokenRefused):
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if list == nil {
			list = []PendingApproval{}
		}
		writeJSON(w, http.StatusOK, list)
	})
}

// PendingApprovals lists the requests waiting for a user's decision: the
// user named by subject (as the operator) or by accessToken (their own).
func (c *Client) PendingApprovals(ctx context.Context, subject, accessToken string) ([]PendingApproval, error) {
	body, err := json.Marshal(ApprovalsRequest{Subject: subject, AccessToken: accessToken})
	if err != nil {
		return nil, fmt.Errorf("localapi: encode approvals request: %w", err)
	}
	resp, err := c.send(ctx, http.MethodPost, "/v1/approvals", body, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return nil, &remoteError{msg: e.Error, is: ErrTokenRefused}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp, nil)
	}
	var out []PendingApproval
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("localapi: decode approvals: %w", err)
	}
	return out, nil
}
