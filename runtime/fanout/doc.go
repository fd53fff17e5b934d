// Package fanout tells the other hosts of a deployment (several hosts on
// one shared store) what one of them did that they must act on at once: a
// revocation the authorization server wrote (their revocation caches must
// drop their answers), a security signal about a user (their running tasks
// for the user stop and the tokens they hold for the user go), a
// quarantine or a release of an agent.
//
// Events travel over the store's notifications (store.Notifier: PostgreSQL
// LISTEN/NOTIFY), on one channel, as JSON. A host hears its own events and
// ignores them. Delivery is at most once; a listener that was cut off says
// so with a [KindResync] event when it is back, on which a host drops its
// revocation cache (tasks and tokens it could not stop are bounded by the
// tokens' own lifetimes and revocation records, which every check reads).
// With a store that cannot notify (SQLite: one host), there is nothing to
// fan out and [New] returns nil, which every method accepts.
package fanout
