package loop

import (
	"testing"

	"golang.org/x/net/nettest"
)

// TestConnConformanceMixed runs golang.org/x/net/nettest's net.Conn suite,
// over TCP and Unix, with the adapter's end first against package net's
// (a DialConn client of a net.Listen server, a ListenConn server of a
// net.Dial client) and with the accepted end of a DialConn-ListenConn pair
// first, which TestConnConformance leaves second.
func TestConnConformanceMixed(t *testing.T) {
	noLeaks(t)
	for _, network := range []string{"tcp", "unix"} {
		for _, k := range conformanceKinds {
			t.Run(network+"/"+k.name, func(t *testing.T) {
				checkFDs(t)
				nettest.TestConn(t, endPipe(t, netTransport(network), k.dial, k.listen, k.firstClient))
			})
		}
	}
}
