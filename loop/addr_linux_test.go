package loop

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// TestResolveErrorsLikeNet: an unknown network and each malformed address
// fail, before anything is opened, with the *net.OpError net.Listen and
// net.Dial return for them (none of these needs a name server).
func TestResolveErrorsLikeNet(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ctx := context.Background()
	accept := func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }
	for _, c := range []struct{ network, address string }{
		{"foo", "127.0.0.1:0"},
		{"tcp", "127.0.0.1"},
		{"tcp", "127.0.0.1:99999"},
		{"tcp", "[::1:0"},
		{"tcp4", "[::1]:0"},
		{"tcp6", "127.0.0.1:0"},
		{"unixgramx", "/x"},
	} {
		_, netErr := net.Listen(c.network, c.address)
		_, err := g.ServeAddress(c.network, c.address, accept, nil)
		sameError(t, "ServeAddress "+c.network+" "+c.address, err, netErr)
		_, err = g.Listen(c.network, c.address)
		sameError(t, "Listen "+c.network+" "+c.address, err, netErr)
		_, netErr = net.Dial(c.network, c.address)
		_, err = g.DialAddress(ctx, c.network, c.address, NopHandler{}, nil)
		sameError(t, "DialAddress "+c.network+" "+c.address, err, netErr)
		_, err = g.DialContext(ctx, c.network, c.address)
		sameError(t, "DialContext "+c.network+" "+c.address, err, netErr)
	}
	// The dial of an empty address, net's "missing address".
	_, netErr := net.Dial("tcp", "")
	_, err := g.DialAddress(ctx, "tcp", "", NopHandler{}, nil)
	sameError(t, "DialAddress of nothing", err, netErr)
	// Networks net knows that the loop does not serve are unknown to it.
	for _, network := range []string{"udp", "unixgram", "ip4"} {
		_, err := g.ServeAddress(network, "127.0.0.1:0", accept, nil)
		var op *net.OpError
		var unknown net.UnknownNetworkError
		if !errors.As(err, &op) || op.Op != "listen" || op.Net != network || !errors.As(err, &unknown) {
			t.Errorf("ServeAddress %s: %#v, want a *net.OpError with an UnknownNetworkError", network, err)
		}
	}
}

// TestResolveAddr: what each string form resolves to.
func TestResolveAddr(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		op, network, address string
		want                 net.Addr
	}{
		{"listen", "tcp", "127.0.0.1:80", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}},
		{"listen", "tcp", ":80", &net.TCPAddr{Port: 80}},
		{"listen", "tcp", "", &net.TCPAddr{}},
		{"listen", "tcp4", ":80", &net.TCPAddr{IP: net.IPv4zero, Port: 80}},
		{"listen", "tcp6", "[::1]:80", &net.TCPAddr{IP: net.IPv6loopback, Port: 80}},
		{"listen", "tcp", "[fe80::1%2]:80", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "2"}},
		{"dial", "tcp", ":80", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}},
		{"dial", "tcp6", ":80", &net.TCPAddr{IP: net.IPv6loopback, Port: 80}},
		{"dial", "unix", "/run/x.sock", &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}},
		{"listen", "unix", "@abstract", &net.UnixAddr{Name: "@abstract", Net: "unix"}},
		{"listen", "vsock", "1:1024", &vsock.Addr{ContextID: 1, Port: 1024}},
		{"listen", "vsock", ":1024", &vsock.Addr{ContextID: sockets.VsockAnyCID, Port: 1024}},
		{"listen", "vsock", ":0", &vsock.Addr{ContextID: sockets.VsockAnyCID}},
		{"dial", "vsock", ":1024", &vsock.Addr{ContextID: vsock.Local, Port: 1024}},
		{"dial", "vsock", "local(1):1024", &vsock.Addr{ContextID: 1, Port: 1024}},
		{"dial", "vsock", "host(2):7", &vsock.Addr{ContextID: 2, Port: 7}},
		{"dial", "vsock", "hypervisor(0):7", &vsock.Addr{ContextID: 0, Port: 7}},
		{"dial", "vsock", "vm(42):7", &vsock.Addr{ContextID: 42, Port: 7}},
		{"dial", "vsock", "4294967295:7", &vsock.Addr{ContextID: 4294967295, Port: 7}},
	} {
		got, err := resolveAddr(ctx, c.op, c.network, c.address)
		if err != nil || got.Network() != c.want.Network() || got.String() != c.want.String() {
			t.Errorf("%s %s %q: %v, %v; want %v", c.op, c.network, c.address, got, err, c.want)
		}
	}
	// An address's String resolves back to it.
	for _, a := range []net.Addr{&vsock.Addr{ContextID: 1, Port: 5}, &vsock.Addr{ContextID: 2, Port: 5}, &vsock.Addr{ContextID: 7, Port: 5}, &vsock.Addr{ContextID: 0, Port: 5}} {
		got, err := resolveAddr(ctx, "dial", "vsock", a.String())
		if err != nil || *got.(*vsock.Addr) != *a.(*vsock.Addr) {
			t.Errorf("vsock %q: %v, %v; want %v", a.String(), got, err, a)
		}
	}
	for _, c := range []struct{ address, want string }{
		{"1024", "dial vsock: address 1024: missing port in address"},
		{"1:x", "dial vsock: address x: invalid port"},
		{"1:4294967296", "dial vsock: address 4294967296: invalid port"},
		{"a:1", "dial vsock: address a: invalid context ID"},
		{"-1:1", "dial vsock: address -1: invalid context ID"},
		{"local(2):1", "dial vsock: address local(2): invalid context ID"},
		{"vm(1):1", "dial vsock: address vm(1): invalid context ID"},
		{"guest(3):1", "dial vsock: address guest(3): invalid context ID"},
		{"local(1:1", "dial vsock: address local(1: invalid context ID"},
	} {
		_, err := resolveAddr(ctx, "dial", "vsock", c.address)
		var op *net.OpError
		var ae *net.AddrError
		if !errors.As(err, &op) || !errors.As(err, &ae) || err.Error() != c.want {
			t.Errorf("vsock %q: %v, want %q", c.address, err, c.want)
		}
	}
}

// TestAddressForms: a server at each string form answers a client of package
// net and one of DialAddress, and the listener's own address string dials it.
func TestAddressForms(t *testing.T) {
	cases := []struct{ network, address string }{
		{"tcp", "127.0.0.1:0"},
		{"tcp", "localhost:0"},
		{"tcp4", ":0"},
		{"tcp6", "[::1]:0"},
		{"unix", ""}, // a path in the test's directory
	}
	for _, c := range cases {
		t.Run(c.network+" "+c.address, func(t *testing.T) {
			if c.network == "tcp6" {
				probe, err := net.Listen("tcp6", "[::1]:0")
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				probe.Close()
			}
			address := c.address
			if c.network == "unix" {
				address = filepath.Join(t.TempDir(), "echo.sock")
			}
			checkFDs(t)
			g := NewGroup(2, nil)
			defer shutdown(t, g)
			ln, err := g.ServeAddress(c.network, address, func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			peer, err := net.Dial(c.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			if err := echoOnce(peer, "net.Dial"); err != nil {
				t.Fatal(err)
			}
			dialEcho(t, g, c.network, ln.Addr().String())
		})
	}
}

// dialEcho dials address with DialAddress and DialContext and echoes a
// message over each.
func dialEcho(t *testing.T, g *Group, network, address string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := newRecorder()
	ch, err := g.DialAddress(ctx, network, address, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.Write([]byte("DialAddress"), nil)
	waitData(t, rec, "DialAddress")
	ch.Close()
	c, err := g.DialContext(ctx, network, address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoOnce(c, "DialContext"); err != nil {
		t.Fatal(err)
	}
}

// TestListenAddress: the net.Listener of Listen serves a client of package
// net and one of DialContext.
func TestListenAddress(t *testing.T) {
	checkFDs(t)
	g := NewGroup(2, nil)
	defer shutdown(t, g)
	ln, err := g.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				served <- nil
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := echoOnce(peer, "net.Dial"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := g.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoOnce(c, "DialContext"); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	<-served
}

// TestVsockAddress: ServeAddress and DialAddress on vsock's local context ID.
func TestVsockAddress(t *testing.T) {
	requireVsockLoopback(t)
	checkFDs(t)
	g := NewGroup(2, nil)
	defer shutdown(t, g)
	ln, err := g.ServeAddress("vsock", "1:0", func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	port := vsockPort(t, ln.Addr())
	if err := echoOnce(dialVsock(t, port), "vsock.Dial"); err != nil {
		t.Fatal(err)
	}
	dialEcho(t, g, "vsock", ln.Addr().String())
}

// TestVsockAddressError: where vsock's local context ID cannot be listened
// on, the error names the network and the address as written.
func TestVsockAddressError(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	accepted := func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }
	// On a host without vsock's loopback the bind itself fails
	// (EADDRNOTAVAIL); where it listens (the guest of make test-vsock), a
	// second listener on the same port fails (EADDRINUSE). Either is an error
	// worded as net's.
	addr := "1:0"
	ln, err := g.ServeAddress("vsock", addr, accepted, nil)
	if err == nil {
		defer ln.Close()
		addr = "1:" + strconv.Itoa(int(ln.Addr().(*vsock.Addr).Port))
		_, err = g.ServeAddress("vsock", addr, accepted, nil)
	}
	var op *net.OpError
	want := "local(1)" + strings.TrimPrefix(addr, "1")
	if !errors.As(err, &op) || op.Op != "listen" || op.Net != "vsock" || op.Addr == nil || op.Addr.String() != want {
		t.Errorf("ServeAddress vsock %s: %#v, want a *net.OpError listen vsock %s", addr, err, want)
	}
}
