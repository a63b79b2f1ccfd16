//go:build linux || freebsd

package sockets

import "golang.org/x/sys/unix"

// fillIovecs points iov at the first MaxIovecs buffers, skipping empty ones,
// and returns how many entries it filled.
func fillIovecs(iov *[MaxIovecs]unix.Iovec, bufs [][]byte) int {
	n := 0
	for _, b := range bufs[:min(len(bufs), MaxIovecs)] {
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	return n
}
