package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// ErrMetadata reports metadata that could not be fetched or must not be
// used: a fetch failure, or a document naming another resource or issuer.
var ErrMetadata = errors.New("oauth: metadata")

// ProtectedResourceMetadataURL is where RFC 9728 §3.1 puts the metadata of
// resource: /.well-known/oauth-protected-resource inserted between the
// host and the path (a terminating "/" dropped), the query kept.
func ProtectedResourceMetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(resource, "#") {
		return "", fmt.Errorf("%w: %q is not a resource identifier", ErrMetadata, resource)
	}
	out := *u
	out.Path = "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")
	out.RawPath = ""
	return out.String(), nil
}

// ServerMetadataURLs lists, in the order MCP clients try them, the places
// an issuer's metadata may be (SPECS.md §2): RFC 8414 path insertion, then
// OpenID Connect with insertion and with appending for an issuer with a
// path; RFC 8414 then OpenID Connect for a host-only issuer.
func ServerMetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.Contains(issuer, "#") {
		return nil, fmt.Errorf("%w: %q is not an issuer identifier", ErrMetadata, issuer)
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		return []string{origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
		origin + path + "/.well-known/openid-configuration",
	}, nil
}

// DiscoverResource fetches a protected resource's metadata (RFC 9728) and
// checks that it names the resource the client called (§3.3): from
// metadataURL (the challenge's resource_metadata) when given, else from
// the well-known URL of requestURL. resource must equal requestURL with
// code-point equality; nothing is normalized.
func DiscoverResource(ctx context.Context, f *fetch.Fetcher, requestURL, metadataURL string) (*ResourceMetadata, error) {
	if metadataURL == "" {
		var err error
		if metadataURL, err = ProtectedResourceMetadataURL(requestURL); err != nil {
			return nil, err
		}
	}
	var md ResourceMetadata
	if _, err := f.JSON(ctx, metadataURL, &md); err != nil {
		return nil, fmt.Errorf("%w: resource metadata: %w", ErrMetadata, err)
	}
	if md.Resource != requestURL {
		return nil, fmt.Errorf("%w: resource metadata names %q, not %q", ErrMetadata, truncate(md.Resource, 200), requestURL)
	}
	if len(md.AuthorizationServers) == 0 {
		return nil, fmt.Errorf("%w: resource metadata for %q names no authorization server", ErrMetadata, requestURL)
	}
	return &md, nil
}

// DiscoverServer fetches an authorization server's metadata from the
// candidates of [ServerMetadataURLs], in order, and accepts the first
// document whose issuer is identical to issuer (RFC 8414 §3.3). A document
// for another issuer is discarded, never merged.
func DiscoverServer(ctx context.Context, f *fetch.Fetcher, issuer string) (*ServerMetadata, error) {
	urls, err := ServerMetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		var md ServerMetadata
		if _, err := f.JSON(ctx, u, &md); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if md.Issuer != issuer {
			errs = append(errs, fmt.Errorf("%s names issuer %q", u, truncate(md.Issuer, 200)))
			continue
		}
		if md.TokenEndpoint == "" {
			errs = append(errs, fmt.Errorf("%s has no token_endpoint", u))
			continue
		}
		return &md, nil
	}
	return nil, fmt.Errorf("%w: no usable metadata for issuer %q: %w", ErrMetadata, issuer, errors.Join(errs...))
}
