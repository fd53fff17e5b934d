package authserver

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/agenthost/agenthost/credentials/authserver/clientmeta"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// maxRegistrationBytes caps a registration request.
const maxRegistrationBytes = 32 << 10

// handleRegister serves dynamic client registration (RFC 7591) for public
// clients (auth method none) and clients with their own keys
// (private_key_jwt with inline jwks). Secrets are never issued.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "the method must be POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	md, err := s.register(r)
	if err != nil {
		oe := oauth.AsError(err)
		if oe.Code == oauth.CodeServerError {
			s.log.Error("client registration failed", "err", err)
		}
		oauth.WriteError(w, oe)
		return
	}
	oauth.WriteJSON(w, http.StatusCreated, md)
}

func (s *Server) register(r *http.Request) (*clientmeta.Metadata, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "the content type must be application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRegistrationBytes+1))
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "the request body could not be read")
	}
	if len(body) > maxRegistrationBytes {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "the request body exceeds %d bytes", maxRegistrationBytes)
	}
	md, err := clientmeta.Parse(body, maxRegistrationBytes)
	if err != nil {
		return nil, registrationError(err)
	}
	if md.ClientID != "" || md.ClientSecret != "" {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "client_id and client_secret are assigned by the server")
	}
	if err := (clientmeta.Policy{}).ValidateRegistration(md); err != nil {
		return nil, registrationError(err)
	}
	if md.JWKSURI != "" {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "jwks_uri is not supported; send jwks inline")
	}
	if md.Scope != "" {
		scopes, err := oauth.ParseScope(md.Scope)
		if err != nil {
			return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "scope is malformed")
		}
		for _, sc := range scopes {
			if !s.scopes[sc] {
				return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "scope %q is not known", sc)
			}
		}
	}
	id, err := randomToken(16)
	if err != nil {
		return nil, err
	}
	md.ClientID = "dyn-" + id
	md.ClientIDIssuedAt = s.now().Unix()
	if _, err := clientFromMetadata(md.ClientID, kindDynamic, md); err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidClientMetadata, "%s", oauth.AsError(err).Description)
	}
	if err := s.clients.registerClient(r.Context(), md); err != nil {
		return nil, err
	}
	s.log.Info("client registered", "client_id", md.ClientID, "client_name", md.ClientName)
	return md, nil
}

func registrationError(err error) error {
	var ce *clientmeta.Error
	if errors.As(err, &ce) {
		return &oauth.Error{Code: ce.Code, Description: ce.Description}
	}
	return oauth.Errorf(oauth.CodeInvalidClientMetadata, "the client metadata is malformed")
}
