package consent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
)

// DefaultPath is where [Pages.Handler] serves the approval pages: one
// page per request at DefaultPath + approval ID.
const DefaultPath = "/approve/"

// maxFormBytes caps a posted decision form.
const maxFormBytes = 8 << 10

// AuthServer is what the pages need of the authorization server.
// *authserver.Server implements it.
type AuthServer interface {
	// Issuer is the server's issuer identifier; the pages are served on
	// its origin.
	Issuer() string
	// Approval returns the request with an approval ID in any state, or
	// an error wrapping authserver.ErrApprovalNotFound.
	Approval(ctx context.Context, id string) (*authserver.Approval, error)
	// DecideApproval records user's decision; it returns an error
	// wrapping authserver.ErrApprovalNotFound, ErrApprovalWrongUser,
	// ErrApprovalExpired or ErrApprovalDecided when it cannot.
	DecideApproval(ctx context.Context, id, user string, approve bool) error
	// SignedInUser is the user signed in at the server in r's browser.
	SignedInUser(r *http.Request) (string, bool)
	// ApprovalCSRFToken and CheckApprovalCSRF make and check the decision
	// form's token, bound to r's session and the request.
	ApprovalCSRFToken(r *http.Request, id string) string
	CheckApprovalCSRF(r *http.Request, id, token string) error
	// SignInURL is the server's sign-in page that returns to returnTo.
	SignInURL(returnTo string) string
}

var _ AuthServer = (*authserver.Server)(nil)

// Config configures [New].
type Config struct {
	// Server is the authorization server whose requests the pages decide.
	// Required.
	Server AuthServer
	// Path is the path [Pages.Handler] serves under, ending in "/";
	// empty means DefaultPath. Mount the handler there without stripping
	// the prefix: the page sends the browser back to its own path after
	// sign-in.
	Path string
	// BaseURL is the origin the pages are served at, for [Pages.URL];
	// empty means the issuer's origin, which must be where the pages are
	// mounted, so that they see the server's session cookie.
	BaseURL string
	// Logger receives a record of each decision; nil means silent.
	Logger *slog.Logger
	// Now is the clock (for the time left on a request); nil means
	// time.Now.
	Now func() time.Time
}

// Pages serves the approval pages.
type Pages struct {
	as   AuthServer
	path string
	base string
	log  *slog.Logger
	now  func() time.Time
	mux  *http.ServeMux
}

// New checks cfg and returns the pages.
func New(cfg Config) (*Pages, error) {
	if cfg.Server == nil {
		return nil, errors.New("consent: Server is required")
	}
	p := &Pages{as: cfg.Server, path: cfg.Path, log: cfg.Logger, now: cfg.Now}
	if p.path == "" {
		p.path = DefaultPath
	}
	if !strings.HasPrefix(p.path, "/") || !strings.HasSuffix(p.path, "/") || strings.ContainsAny(p.path, "{}? #") {
		return nil, fmt.Errorf("consent: path %q must start and end with / and hold no pattern or query", p.path)
	}
	base := cfg.BaseURL
	if base == "" {
		base = cfg.Server.Issuer()
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("consent: base URL %q is not an http or https URL", base)
	}
	p.base = u.Scheme + "://" + u.Host
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.mux = http.NewServeMux()
	p.mux.HandleFunc("GET "+p.path+"{id}", p.show)
	p.mux.HandleFunc("POST "+p.path+"{id}", p.decide)
	return p, nil
}

// Handler serves the pages: GET shows a request, POST decides it.
func (p *Pages) Handler() http.Handler { return p.mux }

// URL is the absolute URL of the approval page of the request
// authReqID, to send the user to (an MCP URL-mode elicitation, the
// console, a notification). It carries the approval ID, never the
// auth_req_id, and no user data.
func (p *Pages) URL(authReqID string) string {
	return p.PageURL(authserver.ApprovalID(authReqID))
}

// PageURL is the absolute URL of the approval page of the request with
// approval ID id (as [authserver.Server.PendingApprovals] lists them).
func (p *Pages) PageURL(id string) string {
	return p.base + p.path + url.PathEscape(id)
}

// show serves GET: the request to a signed-in user it is for.
func (p *Pages) show(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	user, ok := p.as.SignedInUser(r)
	if !ok {
		// Sign in, then come back here.
		h := w.Header()
		h.Set("Location", p.as.SignInURL(p.path+url.PathEscape(id)))
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	a, err := p.as.Approval(ctx, id)
	if err != nil {
		p.failed(w, r, err)
		return
	}
	if a.User != user {
		p.failed(w, r, authserver.ErrApprovalWrongUser)
		return
	}
	switch a.State {
	case authserver.ApprovalPending:
	case authserver.ApprovalExpired:
		p.failed(w, r, authserver.ErrApprovalExpired)
		return
	default:
		p.message(w, r, http.StatusConflict, messagePage{Title: "Already decided",
			Message: fmt.Sprintf("This request was already %s.", a.State)})
		return
	}
	v, err := newView(a, p.now())
	if err != nil {
		// The server's record does not hold together (a digest that is
		// not the arguments'): never offer to approve it.
		p.log.ErrorContext(ctx, "approval request is inconsistent", "approval_id", id, "err", err)
		p.message(w, r, http.StatusInternalServerError, messagePage{Title: "Request not shown",
			Message: "This request could not be shown reliably, so it cannot be approved here."})
		return
	}
	err = render(w, http.StatusOK, approveTemplate, pageData{
		Title:  "Approve an agent's action",
		User:   user,
		View:   v,
		Action: p.path + url.PathEscape(id),
		CSRF:   p.as.ApprovalCSRFToken(r, id),
	})
	if err != nil {
		p.log.ErrorContext(ctx, "render approval page", "err", err)
	}
}

// decide serves POST: the signed-in user's decision, from a form of this
// page in this session.
func (p *Pages) decide(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	user, ok := p.as.SignedInUser(r)
	if !ok {
		p.message(w, r, http.StatusUnauthorized, messagePage{Title: "Not signed in",
			Message: "Your session has ended. Sign in and decide again.",
			Link:    p.as.SignInURL(p.path + url.PathEscape(id)), LinkText: "Sign in"})
		return
	}
	form, err := parseForm(w, r)
	if err != nil {
		p.message(w, r, http.StatusBadRequest, messagePage{Title: "Invalid form", Message: "The form could not be read."})
		return
	}
	if err := p.as.CheckApprovalCSRF(r, id, form.Get("csrf")); err != nil {
		p.log.InfoContext(ctx, "approval form refused", "approval_id", id, "err", err)
		p.message(w, r, http.StatusForbidden, messagePage{Title: "Form expired",
			Message: "The form was not sent from this page in your session. Open the request again."})
		return
	}
	var approve bool
	switch form.Get("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		p.message(w, r, http.StatusBadRequest, messagePage{Title: "Invalid form", Message: "The form has no decision."})
		return
	}
	if err := p.as.DecideApproval(ctx, id, user, approve); err != nil {
		p.failed(w, r, err)
		return
	}
	p.log.InfoContext(ctx, "approval decided", "approval_id", id, "user", user, "approve", approve)
	if approve {
		p.message(w, r, http.StatusOK, messagePage{Title: "Approved",
			Message: "You approved the request. The agent can now go ahead; you can close this page."})
		return
	}
	p.message(w, r, http.StatusOK, messagePage{Title: "Denied",
		Message: "You denied the request. The agent is told no; you can close this page."})
}

// parseForm reads a form post of at most maxFormBytes.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errors.New("not a form post")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(string(body))
}

// failed answers with the page for an approval API error.
func (p *Pages) failed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, authserver.ErrApprovalNotFound):
		p.message(w, r, http.StatusNotFound, messagePage{Title: "Unknown request",
			Message: "There is no such request. It may have been answered or expired some time ago."})
	case errors.Is(err, authserver.ErrApprovalWrongUser):
		// Who the request is for is not said: the link may have reached
		// the wrong person.
		p.message(w, r, http.StatusForbidden, messagePage{Title: "Not your request",
			Message: "This request is for another account than the one you are signed in with. Only that account can decide it.",
			Link:    p.as.SignInURL(r.URL.Path), LinkText: "Sign in with another account"})
	case errors.Is(err, authserver.ErrApprovalExpired):
		p.message(w, r, http.StatusGone, messagePage{Title: "Request expired",
			Message: "This request expired before it was decided. The agent has to ask again."})
	case errors.Is(err, authserver.ErrApprovalDecided):
		p.message(w, r, http.StatusConflict, messagePage{Title: "Already decided",
			Message: "This request was already decided. A request is decided once."})
	default:
		p.log.ErrorContext(r.Context(), "approval page failed", "err", err)
		p.message(w, r, http.StatusInternalServerError, messagePage{Title: "Something went wrong",
			Message: "The request could not be handled. Try again later."})
	}
}

func (p *Pages) message(w http.ResponseWriter, r *http.Request, status int, m messagePage) {
	if err := render(w, status, messageTemplate, pageData{Title: m.Title, Message: m}); err != nil {
		p.log.ErrorContext(r.Context(), "render message page", "err", err)
	}
}
