package a2acard

import (
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/a2aproject/a2a-go/a2a"
)

// ProtocolVersion is the A2A protocol version a2a-go v0.3.3 speaks and the
// protocolVersion of every card [New] builds.
const ProtocolVersion = "0.3.0"

// Security scheme names in the cards [New] builds.
const (
	// SchemeOAuth2 names the OAuth 2.0 security scheme.
	SchemeOAuth2 a2a.SecuritySchemeName = "oauth2"
	// SchemeMutualTLS names the mutual TLS security scheme.
	SchemeMutualTLS a2a.SecuritySchemeName = "mtls"
)

// MediaTypeText is the input and output mode of hosted agents: they take
// and give plain text.
const MediaTypeText = "text/plain"

// ErrInvalid reports an [AgentInfo] or [Options] [New] cannot build a card
// from.
var ErrInvalid = errors.New("a2acard: invalid card description")

// AgentInfo describes a hosted agent: what its plugin says about itself
// (the plugin's Describe) and the scopes a caller needs.
type AgentInfo struct {
	// Name is the agent's name in the host: the path segment of its A2A
	// URL. Required.
	Name string
	// DisplayName is the card's name; empty means Name.
	DisplayName string
	// Description says what the agent does; empty means DisplayName.
	Description string
	// Version is the agent's own version; empty means "0.0.0".
	Version string
	// Skills are what the agent can do. Empty means one skill named after
	// the agent, with its description.
	Skills []Skill
	// Scopes are the OAuth scopes a caller's token must carry to call the
	// agent (besides naming the agent as its audience); empty means any
	// token for the agent.
	Scopes []string
}

// Skill is one capability of an agent; it becomes an A2A AgentSkill.
type Skill struct {
	// ID identifies the skill within the agent. Required, unique.
	ID string
	// Name is the skill's human-readable name; empty means ID.
	Name string
	// Description says what the skill does; empty means Name.
	Description string
	// Tags are keywords for the skill.
	Tags []string
	// Examples are prompts the skill handles.
	Examples []string
}

// Options says where and how an agent is served.
type Options struct {
	// URL is the agent's A2A endpoint (JSON-RPC binding), which is also its
	// resource identifier as an OAuth protected resource. Required: an
	// absolute https URL (http for loopback development).
	URL string
	// TokenURL is the authorization server's token endpoint, declared for
	// the client credentials flow. Required.
	TokenURL string
	// AuthorizationURL is the authorization server's authorization
	// endpoint; when set, the authorization code flow is declared too.
	AuthorizationURL string
	// OAuthMetadataURL is the authorization server's RFC 8414 metadata URL
	// (oauth2MetadataUrl).
	OAuthMetadataURL string
	// ScopeDescriptions describes scopes for the card's flows; a scope
	// without one is described as giving access to the agent.
	ScopeDescriptions map[string]string
	// MutualTLS declares the mutualTLS scheme: the listener does TLS and
	// accepts client certificates, so certificate-bound tokens (RFC 8705)
	// can be used.
	MutualTLS bool
	// Provider names the organization running the host; optional.
	Provider *a2a.AgentProvider
	// DocumentationURL is a page about the agent; optional.
	DocumentationURL string
}

// New builds the (unsigned) card of the agent described by info, served as
// opts says. See the package documentation for what it declares.
func New(info AgentInfo, opts Options) (*a2a.AgentCard, error) {
	if info.Name == "" {
		return nil, fmt.Errorf("%w: the agent has no name", ErrInvalid)
	}
	if err := checkURL(opts.URL); err != nil {
		return nil, fmt.Errorf("%w: URL: %w", ErrInvalid, err)
	}
	if err := checkURL(opts.TokenURL); err != nil {
		return nil, fmt.Errorf("%w: TokenURL: %w", ErrInvalid, err)
	}
	for name, u := range map[string]string{"AuthorizationURL": opts.AuthorizationURL, "OAuthMetadataURL": opts.OAuthMetadataURL, "DocumentationURL": opts.DocumentationURL} {
		if u == "" {
			continue
		}
		if err := checkURL(u); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
		}
	}
	display := orDefault(info.DisplayName, info.Name)
	description := orDefault(info.Description, display)
	skills, err := cardSkills(info, display, description)
	if err != nil {
		return nil, err
	}

	scopes := map[string]string{}
	for _, sc := range info.Scopes {
		if sc == "" {
			return nil, fmt.Errorf("%w: empty scope", ErrInvalid)
		}
		scopes[sc] = orDefault(opts.ScopeDescriptions[sc], "call the agent "+info.Name)
	}
	flows := a2a.OAuthFlows{ClientCredentials: &a2a.ClientCredentialsOAuthFlow{TokenURL: opts.TokenURL, Scopes: scopes}}
	if opts.AuthorizationURL != "" {
		flows.AuthorizationCode = &a2a.AuthorizationCodeOAuthFlow{
			AuthorizationURL: opts.AuthorizationURL, TokenURL: opts.TokenURL, Scopes: scopes,
		}
	}
	schemes := a2a.NamedSecuritySchemes{
		SchemeOAuth2: a2a.OAuth2SecurityScheme{
			Description:       "OAuth 2.0 access token for this agent (audience: the agent's URL)",
			Flows:             flows,
			Oauth2MetadataURL: opts.OAuthMetadataURL,
		},
	}
	required := a2a.SecuritySchemeScopes(slices.Clone(info.Scopes))
	if required == nil {
		required = a2a.SecuritySchemeScopes{}
	}
	security := []a2a.SecurityRequirements{{SchemeOAuth2: required}}
	if opts.MutualTLS {
		schemes[SchemeMutualTLS] = a2a.MutualTLSSecurityScheme{
			Description: "TLS client certificate, for certificate-bound access tokens (RFC 8705)",
		}
		security = append(security, a2a.SecurityRequirements{SchemeOAuth2: required, SchemeMutualTLS: {}})
	}

	return &a2a.AgentCard{
		Name:                 display,
		Description:          description,
		URL:                  opts.URL,
		PreferredTransport:   a2a.TransportProtocolJSONRPC,
		AdditionalInterfaces: []a2a.AgentInterface{{Transport: a2a.TransportProtocolJSONRPC, URL: opts.URL}},
		ProtocolVersion:      ProtocolVersion,
		Version:              orDefault(info.Version, "0.0.0"),
		Provider:             opts.Provider,
		DocumentationURL:     opts.DocumentationURL,
		Capabilities:         a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes:    []string{MediaTypeText},
		DefaultOutputModes:   []string{MediaTypeText},
		Skills:               skills,
		SecuritySchemes:      schemes,
		Security:             security,
	}, nil
}

func cardSkills(info AgentInfo, display, description string) ([]a2a.AgentSkill, error) {
	if len(info.Skills) == 0 {
		return []a2a.AgentSkill{{ID: info.Name, Name: display, Description: description, Tags: []string{info.Name}}}, nil
	}
	out := make([]a2a.AgentSkill, 0, len(info.Skills))
	seen := map[string]bool{}
	for _, sk := range info.Skills {
		if sk.ID == "" {
			return nil, fmt.Errorf("%w: a skill has no id", ErrInvalid)
		}
		if seen[sk.ID] {
			return nil, fmt.Errorf("%w: duplicate skill id %q", ErrInvalid, sk.ID)
		}
		seen[sk.ID] = true
		name := orDefault(sk.Name, sk.ID)
		tags := slices.Clone(sk.Tags)
		if tags == nil {
			tags = []string{}
		}
		out = append(out, a2a.AgentSkill{
			ID: sk.ID, Name: name, Description: orDefault(sk.Description, name),
			Tags: tags, Examples: slices.Clone(sk.Examples),
		})
	}
	return out, nil
}

// checkURL accepts an absolute http or https URL with a host and no
// fragment or userinfo.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("empty")
	case err != nil:
		return err
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return errors.New("not an absolute http(s) URL")
	case u.Fragment != "" || u.User != nil:
		return errors.New("fragment or userinfo")
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
