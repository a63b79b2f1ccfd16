package sockets

import "golang.org/x/sys/unix"

// writev goes through libc, as every darwin system call must, by unix.Writev,
// which allocates its iovec array beyond eight buffers.
func writev(fd int, bufs [][]byte) (int, error) {
	n, err := unix.Writev(fd, bufs[:min(len(bufs), MaxIovecs)])
	if err != nil {
		return 0, err
	}
	return n, nil
}
