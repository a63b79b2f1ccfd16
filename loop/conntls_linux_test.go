package loop

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// The tests of this file run crypto/tls over the adapter: a tls.Server over a
// Conn from ListenConn with a tls.Client over a Conn from DialConn, and the
// adapter at one end only, with package net at the other (endKinds).

// tlsPair is a TLS connection over an endPair, its handshake done (within
// 10s) on both sides, negotiating ALPN protocol "fsm/1".
func tlsPair(t *testing.T, network, dial, listen string) (client, server *tls.Conn, p *endPair) {
	t.Helper()
	p = newEndPair(t, network, dial, listen)
	client = tls.Client(p.client, clientTLS("fsm/1"))
	server = tls.Server(p.server, serverTLS("fsm/1"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		<-done
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return client, server, p
}

// TestConnTLS: over each pairing, the handshake completes on both sides with
// TLS 1.3, ALPN and the server's certificate as configured; 8 MiB go each way
// at once, whole; the client's close_notify (CloseWrite) is io.EOF to the
// server after every byte, the server still writes after it, and its Close
// (close_notify, then the descriptor) is io.EOF to the client after that
// reply; afterwards each side's Write fails with net.ErrClosed, and so does a
// Read of the connection under it (Close closed that too).
func TestConnTLS(t *testing.T) {
	forEndKinds(t, func(t *testing.T, network, dial, listen string) {
		client, server, _ := tlsPair(t, network, dial, listen)
		cert, _ := testCert()
		for name, c := range map[string]*tls.Conn{"client": client, "server": server} {
			st := c.ConnectionState()
			if !st.HandshakeComplete || st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "fsm/1" {
				t.Fatalf("%s: handshake complete %v, version %x, ALPN %q; want TLS 1.3 and fsm/1", name, st.HandshakeComplete, st.Version, st.NegotiatedProtocol)
			}
		}
		if pc := client.ConnectionState().PeerCertificates; len(pc) != 1 || !pc[0].Equal(cert.Leaf) {
			t.Fatal("the client did not see the server's certificate")
		}
		client.SetDeadline(time.Now().Add(time.Minute))
		server.SetDeadline(time.Now().Add(time.Minute))

		// Both directions at once: each side writes 8 MiB while it reads the
		// other's, then the client sends close_notify.
		const size = 8 << 20
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := io.Copy(client, stream(1, size)); err != nil {
				errs <- err
				return
			}
			errs <- client.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			_, err := io.Copy(server, stream(2, size))
			errs <- err
		}()
		atServer, n, err := digest(server) // to the client's close_notify
		if err != nil || n != size || atServer != streamDigest(1, size) {
			t.Fatalf("the server read %d bytes, then %v; want the client's %d bytes whole, then io.EOF", n, err, size)
		}
		atClient, n, err := digest(io.LimitReader(client, size))
		if err != nil || n != size || atClient != streamDigest(2, size) {
			t.Fatalf("the client read %d bytes, then %v; want the server's %d bytes whole", n, err, size)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("writing: %v", err)
			}
		}

		// After the client's close_notify the server still writes, then
		// closes; the client reads the reply, then io.EOF.
		if _, err := server.Write([]byte("after close_notify")); err != nil {
			t.Fatalf("server write after the client's close_notify: %v", err)
		}
		if err := server.Close(); err != nil {
			t.Fatalf("server close: %v", err)
		}
		reply, err := io.ReadAll(client)
		if err != nil || string(reply) != "after close_notify" {
			t.Fatalf("the client read %q, then %v; want the reply, then io.EOF", reply, err)
		}
		if err := client.Close(); err != nil {
			t.Fatalf("client close: %v", err)
		}
		for name, c := range map[string]*tls.Conn{"client": client, "server": server} {
			if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s: Write after Close: %v, want net.ErrClosed", name, err)
			}
			if _, err := c.NetConn().Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s: Read of the connection under a closed tls.Conn: %v, want net.ErrClosed", name, err)
			}
		}
	})
}

// TestConnTLSPeerCloseNotify: a side that closes (close_notify, then the
// descriptor) while the other waits in Read ends that Read with io.EOF, in
// both directions, over each pairing.
func TestConnTLSPeerCloseNotify(t *testing.T) {
	forEndKinds(t, func(t *testing.T, network, dial, listen string) {
		for _, closer := range []string{"client", "server"} {
			client, server, _ := tlsPair(t, network, dial, listen)
			closing, reading := client, server
			if closer == "server" {
				closing, reading = server, client
			}
			reading.SetReadDeadline(time.Now().Add(30 * time.Second))
			res := make(chan error, 1)
			go func() {
				_, err := reading.Read(make([]byte, 16))
				res <- err
			}()
			if err := closing.Close(); err != nil {
				t.Fatalf("%s close: %v", closer, err)
			}
			if err, ok := within(res, 10*time.Second); !ok || err != io.EOF {
				t.Fatalf("the peer of the %s that closed: Read returned %v (%v), want io.EOF", closer, err, ok)
			}
		}
	})
}

// TestConnTLSCloseUnblocks: closing a tls.Conn whose Write waits (the peer
// reads nothing, so the buffers fill) and whose Read waits ends both with
// errors that wrap net.ErrClosed, within 10s.
func TestConnTLSCloseUnblocks(t *testing.T) {
	forEndKinds(t, func(t *testing.T, network, dial, listen string) {
		client, _, _ := tlsPair(t, network, dial, listen)
		reads := make(chan error, 1)
		go func() {
			_, err := client.Read(make([]byte, 16))
			reads <- err
		}()
		writes := make(chan error, 1)
		go func() {
			p := make([]byte, 1<<20)
			for i := 0; i < 1024; i++ { // 1 GiB at most, far more than the buffers
				if _, err := client.Write(p); err != nil {
					writes <- err
					return
				}
			}
			writes <- nil
		}()
		time.Sleep(100 * time.Millisecond) // let the Write fill the buffers and wait
		client.Close()
		for _, r := range []struct {
			op  string
			res chan error
		}{{"Write", writes}, {"Read", reads}} {
			err, ok := within(r.res, 10*time.Second)
			if !ok {
				t.Fatalf("%s did not end within 10s of Close", r.op)
			}
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("%s: %v, want an error wrapping net.ErrClosed", r.op, err)
			}
		}
	})
}

// TestConnTLSReadTimeout: a read deadline passing in a tls.Conn's Read is a
// timeout (os.ErrDeadlineExceeded) that crypto/tls takes as temporary: once
// the deadline is cleared the same tls.Conn reads what its peer sends next.
func TestConnTLSReadTimeout(t *testing.T) {
	forEndKinds(t, func(t *testing.T, network, dial, listen string) {
		client, server, _ := tlsPair(t, network, dial, listen)
		for name, pair := range map[string][2]*tls.Conn{"client": {client, server}, "server": {server, client}} {
			r, w := pair[0], pair[1]
			r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err := r.Read(make([]byte, 16))
			var ne net.Error
			if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("%s: Read past its deadline: %v, want a timeout", name, err)
			}
			r.SetReadDeadline(time.Now().Add(30 * time.Second))
			want := bytes.Repeat([]byte(name), 10_000)
			go w.Write(want)
			got := make([]byte, len(want))
			if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: Read after a timeout: %v; want the %d bytes sent", name, err, len(want))
			}
		}
	})
}
