//go:build !unix

package ca

// noFollow is zero where O_NOFOLLOW does not exist; the Lstat check before
// opening still refuses a symbolic link.
const noFollow = 0
