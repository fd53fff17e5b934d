// Package clientid owns how a hosted workload (an agent) is known as an
// OAuth client at an authorization server that does not trust the host's
// trust domain, and the keys and documents that identity rests on.
//
// # Identities
//
// [Manager.Resolve] gives, for one workload and one server's metadata,
// an [Identity]: the client_id, the client_assertion_type and, unless the
// workload's JWT-SVID is used, a private_key_jwt assertion source (RFC
// 7523 §2.2, §3) signed with the workload's own key. [Identity.ClientConfig]
// puts them into an [oauth.ClientConfig]. Four ways are tried in
// [ModeAuto]'s order, or one is forced per server ([ServerConfig.Mode]):
//
//   - [ModeSPIFFE]: the SPIFFE ID and the JWT-SVID (SPECS.md §10.8), at
//     servers that list spiffe_jwt, and as the last resort;
//   - [ModeCIMD]: the URL of the workload's client ID metadata document
//     (SPECS.md §11.5), at servers that say
//     client_id_metadata_document_supported;
//   - [ModeRegistration]: a client_id from dynamic client registration
//     (RFC 7591, SPECS.md §11.4), made once and kept in a
//     [RegistrationStore]; [Manager.Rejected] registers again when the
//     server no longer knows it (invalid_client);
//   - [ModeStatic]: a client_id and key configured for the server
//     ([ServerConfig.Static]).
//
// # Keys
//
// Each workload has an ES256 key pair for private_key_jwt, made on first
// use and kept as PKCS #8 through a [KeyStore]. Its public JWK Set
// ([Manager.JWKS]) names the key by its RFC 7638 thumbprint. Keys are not
// rotated.
//
// # Documents
//
// [Manager.Document] is a workload's client ID metadata document: client_id
// its own URL, client_name, jwks_uri (or the JWK Set inline), private_key_jwt,
// the grant types client_credentials, token exchange and jwt-bearer, no
// redirect URIs unless configured, and spiffe_id. [Manager.Handler] serves
// the documents and JWK Sets of all workloads at their URLs' paths.
//
// # Registration responses
//
// A registration is used only when the server answers 201 or 200 with a
// JSON object of at most 64 KiB holding a client_id that is not an https
// URL and, if it says one, the private_key_jwt method. Redirects are never
// followed. Every failure wraps one of the package's sentinel errors.
package clientid
