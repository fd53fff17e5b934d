package authserver

// The approval side of CIBA: what a page (package consent), the console
// or the CLI needs to show a backchannel request to its user and record
// the decision. The decision is the server's: only [Server.DecideApproval]
// changes a request, and only the token the server then issues counts
// (DESIGN.md invariant 5).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// ApprovalState is where a backchannel request stands.
type ApprovalState string

// Approval states. A request is pending until the user decides or it
// expires; approved stays approved once the client has its token.
const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalDenied   ApprovalState = "denied"
	ApprovalExpired  ApprovalState = "expired"
)

// Approval is a backchannel authentication request as the person deciding
// it sees it.
type Approval struct {
	// ID is the approval ID: [ApprovalID] of the request's auth_req_id.
	// It names the request in URLs and listings; the auth_req_id itself,
	// which the client redeems, is never shown.
	ID string
	// ClientID and ClientName are the client asking (for an agent, its
	// SPIFFE ID).
	ClientID   string
	ClientName string
	// User is the hinted user, the only one who may decide.
	User string
	// BindingMessage is the client's binding_message, shown on both
	// devices; it may be empty.
	BindingMessage string
	// Scopes are the scopes the token will have (openid among them), and
	// Resources the resource it is for, when the request named one.
	Scopes    []string
	Resources []string
	// AuthorizationDetails are the RFC 9396 details the token will carry,
	// exactly as granted (a JSON array).
	AuthorizationDetails json.RawMessage
	Created              time.Time
	Expires              time.Time
	State                ApprovalState
	// DecidedBy and Decided say who decided and when, once decided.
	DecidedBy string
	Decided   time.Time
}

// Errors of the approval API. Each names why a decision cannot be made;
// none changes the request.
var (
	// ErrApprovalNotFound: no request has this approval ID (or CIBA is
	// off). Requests are kept a while after they expire.
	ErrApprovalNotFound = errors.New("authserver: no such approval request")
	// ErrApprovalWrongUser: the request is for another user.
	ErrApprovalWrongUser = errors.New("authserver: the approval request is for another user")
	// ErrApprovalExpired: the request expired before a decision.
	ErrApprovalExpired = errors.New("authserver: the approval request has expired")
	// ErrApprovalDecided: the request was already decided; a decision is
	// made once.
	ErrApprovalDecided = errors.New("authserver: the approval request was already decided")
)

// ApprovalID is the approval ID of the backchannel request auth_req_id:
// the unpadded base64url SHA-256 of it. Whoever holds the auth_req_id (the
// client, the host that asked for it) can name the request with it; the
// ID does not give the auth_req_id back.
func ApprovalID(authReqID string) string { return tokenHash(authReqID) }

// validApprovalID reports whether id has the form of an approval ID, so
// nothing else is looked up in the store.
func validApprovalID(id string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	return err == nil && len(b) == sha256.Size
}

// approval is the record as the approval API shows it, at now.
func (rec *cibaRecord) approval(id string, now time.Time) Approval {
	a := Approval{
		ID:                   id,
		ClientID:             rec.ClientID,
		ClientName:           rec.ClientName,
		User:                 rec.User,
		BindingMessage:       rec.BindingMessage,
		Scopes:               slices.Clone(rec.Scopes),
		AuthorizationDetails: rec.AuthorizationDetails,
		Created:              rec.Created,
		Expires:              rec.Expires,
		DecidedBy:            rec.Approver,
		Decided:              rec.Decided,
	}
	if rec.Resources {
		a.Resources = slices.Clone(rec.Audience)
	}
	switch rec.Status {
	case cibaApproved, cibaIssued:
		a.State = ApprovalApproved
	case cibaDenied:
		a.State = ApprovalDenied
	default:
		a.State = ApprovalPending
		if !now.Before(rec.Expires) {
			a.State = ApprovalExpired
		}
	}
	return a
}

// loadCIBA reads the request with approval ID id.
func (s *Server) loadCIBA(ctx context.Context, id string) (*cibaRecord, int64, error) {
	if s.ciba == nil || !validApprovalID(id) {
		return nil, 0, ErrApprovalNotFound
	}
	rec, version, err := getRecord[cibaRecord](ctx, s.store, nsCIBA, id, "backchannel request")
	if errors.Is(err, ErrNotFound) {
		return nil, 0, ErrApprovalNotFound
	}
	return rec, version, err
}

// Approval returns the backchannel request with approval ID id in any
// state, or ErrApprovalNotFound. It does not check who asks: show it only
// to its User (see [Server.SignedInUser]).
func (s *Server) Approval(ctx context.Context, id string) (*Approval, error) {
	rec, _, err := s.loadCIBA(ctx, id)
	if err != nil {
		return nil, err
	}
	a := rec.approval(id, s.now())
	return &a, nil
}

// PendingApprovals lists the requests waiting for user's decision, oldest
// first.
func (s *Server) PendingApprovals(ctx context.Context, user string) ([]Approval, error) {
	if s.ciba == nil || user == "" {
		return nil, nil
	}
	idx, _, err := getRecord[cibaUserIndex](ctx, s.store, nsCIBAUsers, user, "backchannel request index")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Approval
	for _, e := range idx.Entries {
		if !now.Before(e.Expires) {
			continue
		}
		rec, _, err := s.loadCIBA(ctx, e.ID)
		if errors.Is(err, ErrApprovalNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if a := rec.approval(e.ID, now); a.State == ApprovalPending && rec.User == user {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Approval) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// DecideApproval records user's decision on the request with approval ID
// id: approve or deny. Only the hinted user may decide
// (ErrApprovalWrongUser), only while the request is pending
// (ErrApprovalExpired, ErrApprovalDecided), and only once: of two
// concurrent decisions one wins and the other gets ErrApprovalDecided.
// The client learns the outcome at the token endpoint (and, in ping mode,
// is notified to ask).
//
// The caller must have authenticated user: a page by the server's own
// sign-in session ([Server.SignedInUser], with the CSRF token of
// [Server.ApprovalCSRFToken]), the CLI by the user's access token.
func (s *Server) DecideApproval(ctx context.Context, id, user string, approve bool) error {
	for range 4 {
		rec, version, err := s.loadCIBA(ctx, id)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		switch {
		case user == "" || user != rec.User:
			return ErrApprovalWrongUser
		case rec.Status != cibaPending:
			return ErrApprovalDecided
		case !now.Before(rec.Expires):
			return ErrApprovalExpired
		}
		rec.Status, rec.Approver, rec.Decided = cibaDenied, user, now
		if approve {
			rec.Status = cibaApproved
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("authserver: encode backchannel request: %w", err)
		}
		_, err = s.store.Put(ctx, nsCIBA, id, data, Write{IfVersion: version, TTL: rec.ttl(now)})
		if errors.Is(err, ErrConflict) {
			// A poll or another decision wrote first: look again.
			continue
		}
		if err != nil {
			return fmt.Errorf("authserver: save backchannel request: %w", err)
		}
		s.removePending(ctx, rec.User, id)
		s.log.InfoContext(ctx, "backchannel authentication decided", "client_id", rec.ClientID, "user", user,
			"approval_id", id, "decision", rec.Status)
		if rec.Mode == oauth.DeliveryPing {
			go s.notifyPing(context.WithoutCancel(ctx), id, rec)
		}
		return nil
	}
	return errors.New("authserver: decide approval: too many concurrent writers")
}

// notifyPing tells a ping-mode client that its request completed (CIBA
// Core §10.2): a POST of {"auth_req_id": …} to its notification endpoint
// with its client_notification_token as bearer token, through the bounded
// fetcher. A failure is logged; the client can still poll.
func (s *Server) notifyPing(ctx context.Context, id string, rec *cibaRecord) {
	body, err := json.Marshal(oauth.PingNotification{AuthReqID: rec.AuthReqID})
	if err != nil {
		return
	}
	header := http.Header{"Authorization": {"Bearer " + rec.NotificationToken}}
	if _, err := s.ciba.notify.Post(ctx, rec.NotificationEndpoint, "application/json", header, body); err != nil {
		s.log.WarnContext(ctx, "backchannel ping notification failed", "client_id", rec.ClientID,
			"approval_id", id, "err", err)
		return
	}
	s.log.DebugContext(ctx, "backchannel ping notification sent", "client_id", rec.ClientID, "approval_id", id)
}

// SignedInUser returns the user signed in at this server in the browser
// that sent r: a session that opens, has not expired, was not revoked
// ([Server.RevokeSubject]), of a user still configured. A page of the
// host served on the server's origin uses it to know who is deciding.
func (s *Server) SignedInUser(r *http.Request) (string, bool) {
	sess, ok := s.signedIn(r)
	return sess.User, ok
}

func (s *Server) signedIn(r *http.Request) (userauth.Session, bool) {
	if s.sessions == nil {
		return userauth.Session{}, false
	}
	sess, err := s.session(r.Context(), r)
	if err != nil {
		return userauth.Session{}, false
	}
	if _, ok := s.cfg.Users.Lookup(sess.User); !ok {
		return userauth.Session{}, false
	}
	return sess, true
}

// approvalCSRFLabel separates approval form tokens from every other MAC.
const approvalCSRFLabel = "agenthost ciba approval v1\x00"

// ApprovalCSRFToken returns the token a form deciding approval id must
// carry, for the browser that sent r: bound to its sign-in session and to
// id, so it is good for that request in that session only. It returns ""
// when r has no session.
func (s *Server) ApprovalCSRFToken(r *http.Request, id string) string {
	sess, ok := s.signedIn(r)
	if !ok {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(s.approvalMAC(sess, id))
}

// CheckApprovalCSRF checks token, posted in a form deciding approval id,
// against the session of the browser that sent r, in constant time. A
// token of another session or another request, or none, is refused.
func (s *Server) CheckApprovalCSRF(r *http.Request, id, token string) error {
	sess, ok := s.signedIn(r)
	if !ok {
		return fmt.Errorf("%w: not signed in", userauth.ErrCSRF)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: malformed token", userauth.ErrCSRF)
	}
	if !hmac.Equal(got, s.approvalMAC(sess, id)) {
		return fmt.Errorf("%w: the token is not for this request in this session", userauth.ErrCSRF)
	}
	return nil
}

// approvalMAC is the HMAC-SHA256, keyed with the session's own CSRF token
// (itself a MAC of the sealed session ID under a server key), of id.
func (s *Server) approvalMAC(sess userauth.Session, id string) []byte {
	m := hmac.New(sha256.New, []byte(s.sessions.SessionCSRFToken(sess)))
	m.Write([]byte(approvalCSRFLabel))
	m.Write([]byte(id))
	return m.Sum(nil)
}

// SignInURL returns the URL of the server's sign-in page that sends the
// browser back to returnTo, a path on the server's origin (such as an
// approval page), once the user has signed in.
func (s *Server) SignInURL(returnTo string) string {
	return s.endpoint(PathSignIn) + "?" + url.Values{"return_to": {returnTo}}.Encode()
}
