//go:build linux || darwin || freebsd

package looptest

import (
	"net"
	"time"
)

// Peer is the simulated far end of one connection: a client made by
// Sim.Dial, or a connection a Remote accepted. Its methods are the driver's
// and act at once on the simulated network, as the far end's system calls
// would.
type Peer struct {
	k    *kernel
	e    *end
	name string
	got  []byte
}

// String names the peer by its address.
func (p *Peer) String() string { return p.name }

// LocalAddr is the peer's own address; RemoteAddr the runtime's end.
func (p *Peer) LocalAddr() net.Addr  { return p.e.laddr }
func (p *Peer) RemoteAddr() net.Addr { return p.e.raddr }

// Write sends as much of b as the connection's buffer takes and returns how
// much that was: 0 when it is full, reset, or the peer shut its side.
func (p *Peer) Write(b []byte) int {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	out := p.e.out()
	if p.e.c.reset || out.eof || p.e.closed {
		return 0
	}
	n := min(len(b), out.free())
	out.buf = append(out.buf, b[:n]...)
	k.record("%s write %d of %d", p.name, n, len(b))
	return n
}

// Read takes up to max bytes of what the runtime sent (all of it when max <=
// 0) and returns them; they are also kept in Received.
func (p *Peer) Read(max int) []byte {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	in := p.e.in()
	if p.e.c.reset {
		return nil
	}
	n := len(in.buf)
	if max > 0 {
		n = min(n, max)
	}
	b := append([]byte(nil), in.buf[:n]...)
	in.buf = in.buf[n:]
	p.got = append(p.got, b...)
	if n > 0 {
		k.record("%s read %d", p.name, n)
	}
	return b
}

// Received returns every byte Read has taken, in order.
func (p *Peer) Received() []byte {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	return p.got
}

// Pending returns how many bytes the runtime sent that the peer has not read.
func (p *Peer) Pending() int {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	return len(p.e.in().buf)
}

// EOF reports whether the runtime's end has shut its side (or closed) and the
// peer has read everything before it.
func (p *Peer) EOF() bool {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	in := p.e.in()
	return in.eof && len(in.buf) == 0
}

// WasReset reports whether the connection was reset.
func (p *Peer) WasReset() bool {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	return p.e.c.reset
}

// Invalidated reports whether the runtime's number for the connection was
// closed behind its back (Sim.CloseBehind, or an EBADF of the Profile).
func (p *Peer) Invalidated() bool {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	return p.e.other().invalidated
}

// Transfers returns when the runtime's end of the connection last read a
// byte from it and last wrote one to it, on the simulation's clock (the zero
// time: never): what a channel's IdleTimeout and WriteTimeout measure from.
func (p *Peer) Transfers() (read, wrote time.Time) {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	e := p.e.other()
	return e.lastRead, e.lastWrite
}

// CloseWrite shuts the peer's sending side: the runtime reads EOF after what
// was sent (a half-close).
func (p *Peer) CloseWrite() {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	p.e.out().eof = true
	k.record("%s shutdown SHUT_WR", p.name)
}

// Close closes the peer's end: the runtime reads EOF after what was sent, and
// a write of the runtime after that is answered with a reset.
func (p *Peer) Close() {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	p.e.closed = true
	p.e.out().eof = true
	if len(p.e.in().buf) > 0 {
		k.resetConn(p.e.c, p.e) // closed with data unread: a reset
	}
	k.record("%s close", p.name)
}

// Reset aborts the connection (a RST): the runtime's reads say ECONNRESET and
// its writes EPIPE; whatever was in flight either way is lost.
func (p *Peer) Reset() {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	k.resetConn(p.e.c, p.e)
	k.record("%s reset", p.name)
}

// Remote is a simulated server the runtime dials (Sim.Listen).
type Remote struct {
	k     *kernel
	peers []*Peer
	next  int
}

// accept makes the Peer of a connection the runtime made to r (k.mu is held).
func (r *Remote) accept(e *end) *Peer {
	p := &Peer{k: r.k, e: e, name: "remote " + e.laddr.String() + "<-" + e.raddr.String()}
	e.peer = p
	r.peers = append(r.peers, p)
	return p
}

// Accept returns the next connection the runtime made to r, or nil.
func (r *Remote) Accept() *Peer {
	r.k.mu.Lock()
	defer r.k.mu.Unlock()
	if r.next == len(r.peers) {
		return nil
	}
	p := r.peers[r.next]
	r.next++
	return p
}
