package loop

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Helpers of the tests that run the standard library's protocols (net/http,
// crypto/tls, HTTP/2) and nettest over the net.Conn adapter of conn.go.

// noLeaks fails the test if goroutines other than the test framework's are
// left once every other cleanup of the test has run. Call it first, so that
// its cleanup runs last. goleak.Find retries for about half a second; this
// keeps asking for up to 10s, since a loaded machine may take longer to let
// net/http's connection goroutines see their connections close.
func noLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := goleak.Find()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines left by the test: %v", err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// stream is n bytes of a deterministic pseudo-random stream named by seed:
// two streams of the same seed and length are equal, and any reordering,
// loss or duplication of its bytes changes its digest.
func stream(seed uint64, n int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(mrand.NewChaCha8(key), n)
}

// digest is the hex SHA-256 of everything r yields and the count of bytes.
func digest(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// streamDigest is the digest of stream(seed, n), which yields no error.
func streamDigest(seed uint64, n int64) string {
	d, _, _ := digest(stream(seed, n))
	return d
}

// An end of a connection made for a test is the adapter's (DialConn,
// ListenConn) or package net's (net.Dial, net.Listen; for vsock,
// mdlayher/vsock's).
const (
	viaLoop = "loop"
	viaNet  = "net"
)

// transport is how the tests make connections of one kind: the address to
// listen on, the address to dial for a listener's, and the listen and dial
// that are not the adapter's.
type transport struct {
	laddr  func(t *testing.T) net.Addr
	target func(t *testing.T, listening net.Addr) net.Addr
	listen func(laddr net.Addr) (net.Listener, error)
	dial   func(ctx context.Context, addr net.Addr) (net.Conn, error)
}

// netTransport is network "tcp" or "unix" with package net at the other end.
func netTransport(network string) transport {
	return transport{
		laddr:  func(t *testing.T) net.Addr { return connAddr(t, network) },
		target: func(_ *testing.T, a net.Addr) net.Addr { return a },
		listen: func(a net.Addr) (net.Listener, error) { return net.Listen(a.Network(), a.String()) },
		dial: func(ctx context.Context, a net.Addr) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, a.Network(), a.String())
		},
	}
}

// endPair is a connected pair whose client end was dialed via dial and whose
// server end was accepted from a listener made via listen (viaLoop or viaNet).
type endPair struct {
	client, server net.Conn
	listener       net.Listener
	g              *Group
}

// makeEndPair connects a pair over tr on a fresh group of two loops; close
// undoes it.
func makeEndPair(t *testing.T, tr transport, dial, listen string) (p *endPair, err error) {
	p = &endPair{g: NewGroup(2, nil)}
	defer func() {
		if err != nil {
			p.close(t)
		}
	}()
	if listen == viaLoop {
		p.listener, err = p.g.ListenConn(tr.laddr(t))
	} else {
		p.listener, err = tr.listen(tr.laddr(t))
	}
	if err != nil {
		return p, err
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	res := make(chan accepted, 1)
	go func() {
		c, err := p.listener.Accept()
		res <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if dial == viaLoop {
		p.client, err = p.g.DialConn(ctx, tr.target(t, p.listener.Addr()))
	} else {
		p.client, err = tr.dial(ctx, tr.target(t, p.listener.Addr()))
	}
	if err != nil {
		p.listener.Close()
		<-res
		return p, err
	}
	a, ok := within(res, 10*time.Second)
	if !ok {
		return p, errors.New("the dialed connection was not accepted within 10s")
	}
	p.server = a.c
	return p, a.err
}

// close closes both ends and the listener, waits for the adapter's
// descriptors among them to be closed and stops the group.
func (p *endPair) close(t *testing.T) {
	t.Helper()
	var closed []<-chan struct{}
	for _, c := range []net.Conn{p.client, p.server} {
		if c == nil {
			continue
		}
		c.Close()
		if lc, ok := c.(*Conn); ok {
			closed = append(closed, lc.Channel().Closed())
		}
	}
	if p.listener != nil {
		p.listener.Close()
		if cl, ok := p.listener.(*ConnListener); ok {
			closed = append(closed, cl.Listener().Closed())
		}
	}
	for _, ch := range closed {
		if _, ok := within(ch, 5*time.Second); !ok {
			t.Error("a channel or the listener did not close within 5s")
		}
	}
	shutdown(t, p.g)
}

// endPipe is a nettest.MakePipe over tr whose first Conn, the one nettest
// puts through most of its tests, is the adapter's end: the client if dial
// is viaLoop and firstClient, else the server.
func endPipe(t *testing.T, tr transport, dial, listen string, firstClient bool) func() (net.Conn, net.Conn, func(), error) {
	return func() (net.Conn, net.Conn, func(), error) {
		p, err := makeEndPair(t, tr, dial, listen)
		if err != nil {
			return nil, nil, nil, err
		}
		if firstClient {
			return p.client, p.server, func() { p.close(t) }, nil
		}
		return p.server, p.client, func() { p.close(t) }, nil
	}
}

// conformanceKinds are the pairs nettest runs over beyond the DialConn client
// against a ListenConn server that TestConnConformance covers: the same pair
// with the accepted end first, and the adapter against package net's ends.
var conformanceKinds = []struct {
	name         string
	dial, listen string
	firstClient  bool
}{
	{"ListenConn-DialConn", viaLoop, viaLoop, false},
	{"DialConn-net.Listen", viaLoop, viaNet, true},
	{"ListenConn-net.Dial", viaNet, viaLoop, false},
}

// within waits for ch for up to d and reports whether it was ready.
func within[T any](ch <-chan T, d time.Duration) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	case <-time.After(d):
		var zero T
		return zero, false
	}
}
