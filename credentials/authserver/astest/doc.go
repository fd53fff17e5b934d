// Package astest drives the embedded authorization server's pages the way
// a person's browser would, for tests of clients that need the
// authorization code flow: it signs in, answers the consent page and stops
// at the redirect to the client.
package astest
