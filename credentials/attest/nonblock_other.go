//go:build !unix

package attest

// openNonBlock is zero where opening a named pipe cannot block.
const openNonBlock = 0
