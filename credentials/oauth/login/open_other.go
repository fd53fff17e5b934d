//go:build !unix

package login

// noFollow: no O_NOFOLLOW here; Load still refuses a file that is not
// regular.
const noFollow = 0
