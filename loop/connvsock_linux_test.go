package loop

import (
	"context"
	"net"
	"testing"

	"github.com/mdlayher/vsock"
	"golang.org/x/net/nettest"
)

// The tests of this file run the protocol and conformance tests of the
// adapter over vsock, in the style of vsock_linux_test.go: they skip on a
// host without the vsock loopback transport and run for real in the guest of
// `make test-vsock`, every connection to CID 1. Package net's part is played
// by mdlayher/vsock.

// vsockTransport is vsock with mdlayher/vsock at the other end.
func vsockTransport() transport {
	return transport{
		laddr:  func(*testing.T) net.Addr { return vsockLocal() },
		target: func(t *testing.T, a net.Addr) net.Addr { return vsockTarget(vsockPort(t, a)) },
		listen: func(net.Addr) (net.Listener, error) { return vsock.ListenContextID(vsock.Local, 0, nil) },
		dial: func(_ context.Context, a net.Addr) (net.Conn, error) {
			return vsock.Dial(vsock.Local, a.(*vsock.Addr).Port, nil)
		},
	}
}

// TestVsockConnConformanceMixed is TestConnConformanceMixed over vsock: the
// accepted end of a DialConn-ListenConn pair first, a DialConn client of a
// mdlayher/vsock listener, and a ListenConn server of a mdlayher/vsock
// client.
func TestVsockConnConformanceMixed(t *testing.T) {
	requireVsockLoopback(t)
	noLeaks(t)
	for _, k := range conformanceKinds {
		t.Run(k.name, func(t *testing.T) {
			checkFDs(t)
			nettest.TestConn(t, endPipe(t, vsockTransport(), k.dial, k.listen, k.firstClient))
		})
	}
}

// forVsockHTTP runs f as subtests DialConn and vsock.Dial, the ways a client
// dials a ListenConn server over vsock, each with noLeaks and checkFDs.
func forVsockHTTP(t *testing.T, f func(t *testing.T, how string)) {
	requireVsockLoopback(t)
	for _, k := range []struct{ name, how string }{{"DialConn", viaLoop}, {"vsock.Dial", viaNet}} {
		t.Run(k.name, func(t *testing.T) {
			noLeaks(t)
			checkFDs(t)
			f(t, k.how)
		})
	}
}

// TestVsockConnHTTP: net/http over ListenConn on vsock: 40 requests on one
// kept-alive connection, then 4 MiB uploads and downloads, whole.
func TestVsockConnHTTP(t *testing.T) {
	forVsockHTTP(t, func(t *testing.T, how string) {
		checkKeepAlive(t, startHTTPOver(t, vsockTransport(), describe, nil), how, 40)
		checkUpload(t, startHTTPOver(t, vsockTransport(), sums, nil), how, 4<<20)
		checkDownload(t, startHTTPOver(t, vsockTransport(), sums, nil), how, 4<<20)
	})
}

// TestVsockConnHTTP2: HTTP/2 over TLS over ListenConn on vsock: 8 streams in
// their handlers at once and 1 MiB uploads and downloads, all on one
// connection.
func TestVsockConnHTTP2(t *testing.T) {
	forVsockHTTP(t, func(t *testing.T, how string) {
		h := newH2Handler(8)
		checkHTTP2(t, startHTTPOver(t, vsockTransport(), h, serverTLS("h2", "http/1.1")), h, how, 1<<20)
	})
}
