package loop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"sync"
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

// testCert is a self-signed ECDSA certificate for "localhost" and 127.0.0.1,
// made once per test binary, with a pool that trusts it.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// serverTLS is a server configuration with testCert offering protos.
func serverTLS(protos ...string) *tls.Config {
	cert, _ := testCert()
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos}
}

// clientTLS is a client configuration that trusts testCert only, for
// "localhost", asking for protos.
func clientTLS(protos ...string) *tls.Config {
	_, pool := testCert()
	return &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: protos}
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

// newEndPair is makeEndPair over network ("tcp" or "unix"), failing the test
// on an error; the test's cleanup closes the pair.
func newEndPair(t *testing.T, network, dial, listen string) *endPair {
	t.Helper()
	p, err := makeEndPair(t, netTransport(network), dial, listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.close(t) })
	return p
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

// endKinds are the pairings the protocol tests run over: the adapter at both
// ends, and the adapter at one end with package net at the other.
var endKinds = []struct{ name, dial, listen string }{
	{"DialConn-ListenConn", viaLoop, viaLoop},
	{"net.Dial-ListenConn", viaNet, viaLoop},
	{"DialConn-net.Listen", viaLoop, viaNet},
}

// forEndKinds runs f as subtests network/kind for TCP and Unix and every
// pairing of endKinds, each with noLeaks and checkFDs.
func forEndKinds(t *testing.T, f func(t *testing.T, network, dial, listen string)) {
	for _, network := range []string{"tcp", "unix"} {
		for _, k := range endKinds {
			t.Run(network+"/"+k.name, func(t *testing.T) {
				noLeaks(t)
				checkFDs(t)
				f(t, network, k.dial, k.listen)
			})
		}
	}
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
