package clientid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// Limits on registration exchanges.
const (
	// maxRegistrationResponse caps a registration response body.
	maxRegistrationResponse = 64 << 10
	// maxRegistrationAccessToken caps a registration_access_token.
	maxRegistrationAccessToken = 4096
)

// errorCode is an OAuth error code (RFC 6749 §5.2: NQSCHAR without the
// space), bounded.
var errorCode = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,64}$`)

// ApplicationType is the application_type of registrations (OpenID
// Connect Dynamic Client Registration §2; MCP 2026-07-28 requires it):
// a workload is a confidential client that runs on a server.
const ApplicationType = "web"

// registrationRequest is the client metadata a workload registers with
// (RFC 7591 §2, §3.1).
type registrationRequest struct {
	ClientName              string          `json:"client_name"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	ApplicationType         string          `json:"application_type"`
}

// registrationResponse is the part of a client information response
// (RFC 7591 §3.2.1, RFC 7592 §3) the host reads.
type registrationResponse struct {
	ClientID                string          `json:"client_id"`
	ClientIDIssuedAt        json.RawMessage `json:"client_id_issued_at"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	RegistrationAccessToken string          `json:"registration_access_token"`
	RegistrationClientURI   string          `json:"registration_client_uri"`
}

// registered returns the identity of w's registration at md: the one
// kept, or a new one. A kept registration of another key or JWK Set URL
// than w's current ones is registered again.
func (m *Manager) registered(ctx context.Context, md *oauth.ServerMetadata, w Workload, sc serverSettings) (*Identity, error) {
	k, err := m.key(ctx, w.Name)
	if err != nil {
		return nil, fmt.Errorf("clientid: server %s: %w", md.Issuer, err)
	}
	unlock, err := m.locks.lock(ctx, "reg\x00"+md.Issuer+"\x00"+w.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	reg, err := m.loadRegistration(ctx, md.Issuer, w.Name)
	switch {
	case err == nil && reg.fits(w, k):
		return m.keyIdentity(md, w, ModeRegistration, reg.ClientID, k)
	case err == nil:
		m.log.InfoContext(ctx, "clientid: the workload's key or JWK Set URL changed; registering again",
			attrIssuer, md.Issuer, attrWorkload, w.Name, attrClientID, reg.ClientID)
	case !notFound(err):
		return nil, err
	}
	reg, err = m.register(ctx, md, w, sc, k, false)
	if err != nil {
		return nil, err
	}
	return m.keyIdentity(md, w, ModeRegistration, reg.ClientID, k)
}

// fits reports whether r registered what w now publishes: the same JWK
// Set URL (whatever key it serves), or the same key inline.
func (r *Registration) fits(w Workload, k *signingKey) bool {
	if r.JWKSURI != "" {
		return r.JWKSURI == w.JWKSURI
	}
	return w.JWKSURI == "" && r.KeyID == k.kid
}

// Rejected is what the caller does when the server refused id with
// invalid_client: a registered client is dropped and registered again,
// and the new identity returned. A registration that itself replaced a
// refused one is registered again only once it is older than
// Config.ReregisterAfter, so a server that refuses every registration
// gets at most one per that interval. When another caller already
// replaced the refused registration, its replacement is returned.
// Other identities (and registrations not redone) give an error wrapping
// [ErrRejected].
func (m *Manager) Rejected(ctx context.Context, id *Identity) (*Identity, error) {
	if id == nil || id.server == nil {
		return nil, fmt.Errorf("%w: no identity", ErrRejected)
	}
	if id.Mode != ModeRegistration {
		return nil, fmt.Errorf("%w: server %s refused client %q of workload %q (%s); only a registered client is registered again",
			ErrRejected, id.Issuer, id.ClientID, id.Workload, id.Mode)
	}
	md := id.server
	w, err := m.workload(id.Workload)
	if err != nil {
		return nil, err
	}
	k, err := m.key(ctx, w.Name)
	if err != nil {
		return nil, fmt.Errorf("clientid: server %s: %w", md.Issuer, err)
	}
	unlock, err := m.locks.lock(ctx, "reg\x00"+md.Issuer+"\x00"+w.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	reg, err := m.loadRegistration(ctx, md.Issuer, w.Name)
	switch {
	case err == nil && reg.ClientID != id.ClientID:
		// Replaced since id was resolved.
		if reg.fits(w, k) {
			return m.keyIdentity(md, w, ModeRegistration, reg.ClientID, k)
		}
	case err == nil && reg.Renewed && m.now().Sub(reg.RegisteredAt) < m.reregisterAfter:
		return nil, fmt.Errorf("%w: server %s refused client %q of workload %q, registered %s ago to replace a refused one; not registering again before %s",
			ErrRejected, md.Issuer, id.ClientID, w.Name, m.now().Sub(reg.RegisteredAt).Round(time.Second),
			reg.RegisteredAt.Add(m.reregisterAfter).UTC().Format(time.RFC3339))
	case err != nil && !notFound(err):
		return nil, err
	}
	m.log.WarnContext(ctx, "clientid: the server refused a registered client; registering again",
		attrIssuer, md.Issuer, attrWorkload, w.Name, attrClientID, id.ClientID)
	if err := m.dropRegistration(ctx, md.Issuer, w.Name); err != nil {
		return nil, err
	}
	reg, err = m.register(ctx, md, w, m.servers[md.Issuer], k, true)
	if err != nil {
		return nil, err
	}
	return m.keyIdentity(md, w, ModeRegistration, reg.ClientID, k)
}

func (m *Manager) loadRegistration(ctx context.Context, issuer, workload string) (*Registration, error) {
	key := [2]string{issuer, workload}
	m.mu.RLock()
	reg := m.regs[key]
	m.mu.RUnlock()
	if reg != nil {
		return reg, nil
	}
	reg, err := m.regStore.Load(ctx, issuer, workload)
	if err != nil {
		if notFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("clientid: server %s: registration of workload %q: load: %w", issuer, workload, err)
	}
	if reg == nil || reg.ClientID == "" || reg.Issuer != issuer || reg.Workload != workload {
		return nil, fmt.Errorf("clientid: server %s: registration of workload %q: the store returned an unusable record", issuer, workload)
	}
	m.mu.Lock()
	m.regs[key] = reg
	m.mu.Unlock()
	return reg, nil
}

func (m *Manager) dropRegistration(ctx context.Context, issuer, workload string) error {
	m.mu.Lock()
	delete(m.regs, [2]string{issuer, workload})
	m.mu.Unlock()
	if err := m.regStore.Delete(ctx, issuer, workload); err != nil {
		return fmt.Errorf("clientid: server %s: registration of workload %q: delete: %w", issuer, workload, err)
	}
	return nil
}

// register registers w at md (RFC 7591 §3.1) with private_key_jwt and its
// JWK Set (by URL, else inline), and keeps the result.
func (m *Manager) register(ctx context.Context, md *oauth.ServerMetadata, w Workload, sc serverSettings, k *signingKey, renewed bool) (*Registration, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: server %s, workload %q: %s", ErrRegistration, md.Issuer, w.Name, fmt.Sprintf(format, args...))
	}
	if err := m.checkEndpoint(md.RegistrationEndpoint); err != nil {
		return nil, fail("registration_endpoint: %v", err)
	}
	req := registrationRequest{
		ClientName:              w.clientName(),
		TokenEndpointAuthMethod: oauth.AuthPrivateKeyJWT,
		GrantTypes:              GrantTypes,
		JWKSURI:                 w.JWKSURI,
		ApplicationType:         ApplicationType,
	}
	if w.JWKSURI == "" {
		set, err := k.keySet()
		if err != nil {
			return nil, fail("JWK Set: %v", err)
		}
		req.JWKS = set
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fail("encode: %v", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, md.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fail("%v", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if sc.InitialAccessToken != "" {
		hreq.Header.Set("Authorization", "Bearer "+sc.InitialAccessToken)
	}
	resp, err := m.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: server %s, workload %q: %w", ErrRegistration, md.Issuer, w.Name, ctx.Err())
		}
		return nil, fail("%v", err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > maxRegistrationResponse {
		return nil, fail("the response of %d bytes exceeds %d", resp.ContentLength, maxRegistrationResponse)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRegistrationResponse+1))
	if err != nil {
		return nil, fail("read the response: %v", err)
	}
	if len(data) > maxRegistrationResponse {
		return nil, fail("the response exceeds %d bytes", maxRegistrationResponse)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, fail("the endpoint answered %d: redirects are not followed", resp.StatusCode)
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		var oe oauth.Error
		if json.Unmarshal(data, &oe) == nil && errorCode.MatchString(oe.Code) {
			return nil, fmt.Errorf("%w: server %s, workload %q: the endpoint answered %d: %w",
				ErrRegistration, md.Issuer, w.Name, resp.StatusCode, oauth.Errorf(oe.Code, "%s", oe.Description).WithStatus(resp.StatusCode))
		}
		return nil, fail("the endpoint answered %d without an OAuth error", resp.StatusCode)
	}
	if err := checkJSONType(resp.Header.Get("Content-Type")); err != nil {
		return nil, fail("%v", err)
	}
	var rr registrationResponse
	if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' || json.Unmarshal(data, &rr) != nil {
		return nil, fail("the response is not a JSON object of client information")
	}
	if err := checkClientID(rr.ClientID); err != nil {
		return nil, fail("client_id %v", err)
	}
	if strings.HasPrefix(strings.ToLower(rr.ClientID), "https://") {
		// An AS-generated client_id SHOULD NOT look like a metadata
		// document URL (SPECS.md §11.5): another server would take it
		// for one and fetch whatever it names.
		return nil, fail("the assigned client_id %q is an https URL, as only client ID metadata documents are", truncate(rr.ClientID, 200))
	}
	if rr.TokenEndpointAuthMethod != "" && rr.TokenEndpointAuthMethod != oauth.AuthPrivateKeyJWT {
		return nil, fail("the client was registered with token_endpoint_auth_method %q, not private_key_jwt", truncate(rr.TokenEndpointAuthMethod, 64))
	}
	if len(rr.RegistrationAccessToken) > maxRegistrationAccessToken {
		return nil, fail("the registration_access_token exceeds %d bytes", maxRegistrationAccessToken)
	}
	if rr.RegistrationClientURI != "" {
		if err := m.checkEndpoint(rr.RegistrationClientURI); err != nil {
			return nil, fail("registration_client_uri: %v", err)
		}
	}
	// client_id_issued_at is informational: a value that is not a
	// non-negative integer is dropped, not refused.
	issuedAt, err := strconv.ParseInt(string(rr.ClientIDIssuedAt), 10, 64)
	if err != nil || issuedAt < 0 {
		issuedAt = 0
	}
	reg := &Registration{
		Issuer:                  md.Issuer,
		Workload:                w.Name,
		ClientID:                rr.ClientID,
		ClientIDIssuedAt:        issuedAt,
		RegistrationAccessToken: rr.RegistrationAccessToken,
		RegistrationClientURI:   rr.RegistrationClientURI,
		JWKSURI:                 w.JWKSURI,
		KeyID:                   k.kid,
		RegisteredAt:            m.now().UTC(),
		Renewed:                 renewed,
	}
	if err := m.regStore.Save(ctx, reg); err != nil {
		return nil, fmt.Errorf("clientid: server %s: registration of workload %q as client %q: save: %w",
			md.Issuer, w.Name, reg.ClientID, err)
	}
	m.mu.Lock()
	m.regs[[2]string{md.Issuer, w.Name}] = reg
	m.mu.Unlock()
	m.log.InfoContext(ctx, "clientid: client registered", attrIssuer, md.Issuer, attrWorkload, w.Name, attrClientID, reg.ClientID)
	return reg, nil
}

// checkEndpoint requires an absolute https URL (http too when AllowHTTP)
// with a host and without userinfo or fragment.
func (m *Manager) checkEndpoint(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > maxURLLength || strings.ContainsAny(s, "# \t\r\n\\") {
		return fmt.Errorf("%q is not an acceptable URL", truncate(s, 200))
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Hostname() == "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL with a host", truncate(s, 200))
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !m.allowHTTP) {
		return fmt.Errorf("%q is not an https URL", truncate(s, 200))
	}
	return nil
}

// checkJSONType accepts application/json and application/<x>+json.
func checkJSONType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("the response has no JSON content type")
	}
	if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return fmt.Errorf("the response's content type %q is not JSON", truncate(mt, 64))
}
