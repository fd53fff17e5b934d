// Package a2aremote calls remote A2A agents (protocol 0.3, JSON-RPC
// binding, through github.com/a2aproject/a2a-go v0.3.3's a2aclient) for
// the host: it fetches and checks their cards and sends them messages
// with an access token the host obtained for them.
//
// # Cards
//
// [Client.FetchCard] fetches a card under the outbound-fetch rules of
// credentials/oauth/fetch (DESIGN.md invariant 8: https only unless
// allowed, redirects only within the origin, a size cap, a timeout, no
// private addresses unless allowed). When [Config.CardVerify] gives the
// trust bundle of the card's domain (its X.509 authorities, with a check
// of the leaf, for a signature carrying an x5c chain; its keys by kid for
// one that does not), or [Config.CardKeys] its keys alone, a signed card's
// signature is verified (a2acard.VerifyJSON over the bytes as served) and
// a card whose signature fails is refused; with
// [Config.RequireSignedCards] an unsigned card is refused too. The agent's JSON-RPC endpoint must be on the card's origin
// unless the card's signature verified (then the signer vouches for it).
//
// # Calls
//
// [Client.Send] (message/send) and [Client.Stream] (message/stream) send a
// message with "Authorization: Bearer" and a token from the caller's
// [TokenSource] for the endpoint (the audience), to that endpoint only:
// calls follow no redirects and every response is capped
// ([Config.MaxResponseBytes]). A task that stops for the caller maps to a
// typed error the host can surface: input-required to
// [*InputRequiredError] (answer with a message to its task), auth-required
// to [*AuthRequiredError] (with the approval URL when the agent gave one;
// agenthost's server puts it in the status message metadata under
// [MetadataApprovalURL]), and failed, canceled or rejected to
// [*TaskError]. While streaming, an auth-required status that does not end
// the stream arrives as an [UpdateApproval] [Update]. A call the agent
// refuses at the HTTP level (401 or 403) is an [*UnauthorizedError] with
// the challenges of its WWW-Authenticate header, among them the
// resource_metadata URL of RFC 9728 §5.1, for the caller to discover (or
// rediscover) where to get a token.
package a2aremote
