// Package hosttools holds the tools the host implements itself, each a
// [mediator.Tool] that the mediator calls once it has decided, bound and
// audited the call (DESIGN §4, §9):
//
//	clock/now          the current date and time in UTC (read-only)
//	notes/search       notes whose text contains every word of a query (read-only)
//	notes/add          store a note (writes)
//	payments/transfer  move money between accounts of the host's ledger (writes)
//	payments/balance   an account's balance (read-only)
//
// [New] builds them from a [Config]; [Names] lists them, for whoever checks
// grants before the host starts (runtime/config).
//
// # Notes
//
// Notes live in the store, per agent: namespace "tool.notes", one record per
// note keyed "<agent>/<creation time>", so an agent searches only its own.
// A note is at most 8 KiB.
//
// # Payments
//
// The payments tools keep a ledger in the store: one record per account in
// namespace "tool.payments.accounts" holding its balance in cents, updated
// with optimistic concurrency, and an append-only log of transfers,
// "tool.payments.transfers". Accounts start at 0 with an overdraft of
// 1,000.00 and may not go below it, so a transfer really moves (local)
// money and can fail.
//
// payments/transfer declares its amount as a business field
// ([mediator.TxnBinder]), so the call's Txn-Token binds it in tctx beside
// the arguments' digest. Before it moves anything the tool checks that
// token ([mediator.CheckTxnToken] with [Config.VerifyTxnToken]): the
// signature, typ, aud and exp, then the tool and the arguments' digest,
// then the amount it is about to move. A call whose arguments or amount
// differ from its token's (changed after the host minted it) is refused
// with an error wrapping [mediator.ErrTxnToken]; with no verifier every
// transfer is refused.
package hosttools
