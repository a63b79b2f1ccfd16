//go:build linux || darwin || freebsd

package looptest

import (
	"fmt"
	"hash"
	"hash/fnv"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// The simulated kernel: one descriptor table behind the sockets.Syscalls and
// the pollers of a Sim. Numbers are handed out lowest free first, as POSIX
// requires, so a number closed behind the runtime's back is the next one
// another owner gets.

type fileKind uint8

const (
	fileSocket   fileKind = iota + 1 // created, not yet listening or connected
	fileListener                     // listening
	fileConn                         // one end of a connection (connecting or connected)
	filePoller                       // a poller's own descriptor
	fileWakeup                       // a poller's wakeup descriptor (an eventfd)
	fileForeign                      // a regular file of another owner
)

func (k fileKind) String() string {
	switch k {
	case fileSocket:
		return "socket"
	case fileListener:
		return "listener"
	case fileConn:
		return "connection"
	case filePoller:
		return "poller"
	case fileWakeup:
		return "wakeup"
	case fileForeign:
		return "foreign file"
	}
	return "file(" + strconv.Itoa(int(k)) + ")"
}

// file is an open file description: what one or more numbers refer to.
type file struct {
	id    uint64 // birth order
	kind  fileKind
	fam   sockets.Family
	refs  int // numbers referring to it
	laddr net.Addr

	// fileListener
	lkey    string
	backlog []*end
	blmax   int

	// fileConn
	end *end

	// filePoller
	poller *simPoller
}

// pipe is one direction of a connection: bytes the writer sent that the
// reader has not taken, bounded like a socket buffer.
type pipe struct {
	buf []byte
	cap int
	eof bool // the writer shut down its side (or closed)
}

func (p *pipe) free() int { return p.cap - len(p.buf) }

// conn is a stream connection between two ends; each end is the runtime's
// (a file) or a Peer's.
type conn struct {
	pipes [2]pipe // pipes[i] carries end i's writes to end 1-i
	ends  [2]*end
	fam   sockets.Family
	// reset: a RST (or, on a Unix socket, a close with data unread) broke
	// the connection. Each end's first read or write after it takes the
	// error (rst[i]: not yet taken); then reads say EOF and writes EPIPE.
	reset bool
	rst   [2]syscall.Errno
}

// end is one end of a conn.
type end struct {
	c    *conn
	side int
	file *file // the runtime's file, nil for a Peer's end
	peer *Peer
	// connecting: Connect said EINPROGRESS and the result is not yet known.
	connecting bool
	// unanswered: the connect went to a Blackhole; it stays in progress
	// until the runtime gives up.
	unanswered bool
	connErr    syscall.Errno // the SO_ERROR a finished connect left
	errTaken   bool          // connErr was read (SO_ERROR, or a read)
	refused    bool          // the connect will fail (no listener)
	laddr      net.Addr
	raddr      net.Addr
	shutRd     bool
	closed     bool // the end's owner closed it
	// invalidated: the runtime's number for the end was closed behind its
	// back; what it writes after may go to another owner's file.
	invalidated bool
	// lastRead and lastWrite: when the runtime's end last read a byte and
	// last wrote one (the zero time: never).
	lastRead, lastWrite time.Time
}

// takeReset returns the reset error the end has not yet taken (each end's
// first read or write after a reset takes it), or 0.
func (e *end) takeReset() syscall.Errno {
	err := e.c.rst[e.side]
	e.c.rst[e.side] = 0
	return err
}

func (e *end) in() *pipe  { return &e.c.pipes[1-e.side] }
func (e *end) out() *pipe { return &e.c.pipes[e.side] }
func (e *end) other() *end {
	return e.c.ends[1-e.side]
}

// slot is one number of the descriptor table.
type slot struct {
	f *file
	// tainted: the number was invalidated behind the runtime's back; it is
	// never handed to the runtime again, so that any later call on it is known
	// to be a stale one.
	tainted bool
	// learnt: the runtime was told EBADF for the number since it was
	// invalidated.
	learnt bool
	// closed: the runtime closed the number and has not been given it since.
	closed bool
}

// kernel is the descriptor table and the address space of a simulation.
type kernel struct {
	mu       sync.Mutex
	sim      *Sim
	fds      []slot
	births   uint64
	ports    int
	addrs    map[string]*file   // listening addresses
	bound    map[string]bool    // addresses a socket was bound to
	remotes  map[string]*Remote // addresses the driver's Remotes listen on
	holes    map[string]bool    // addresses that never answer a connect (Blackhole)
	pollers  []*simPoller
	trace    hash.Hash64
	nsys     uint64       // system calls made
	owned    map[int]bool // the numbers the runtime was given and has not closed
	faults   *faultPlan
	sockBuf  int
	backlogN int
	kill     bool // the simulation ended with loops running: every Wait fails
	// unknowing counts closes of a number another owner had taken, which no
	// call had told the runtime about.
	unknowing int
	// turnCalls counts the runtime's calls since a loop last waited
	// (simSys.call).
	turnCalls int
}

func newKernel(s *Sim) *kernel {
	return &kernel{
		sim: s, ports: 40000, addrs: map[string]*file{}, remotes: map[string]*Remote{}, holes: map[string]bool{}, bound: map[string]bool{},
		trace: fnv.New64a(), owned: map[int]bool{}, sockBuf: 64 << 10, backlogN: 128,
	}
}

// record adds one line to the run's trace hash, and to its tail.
func (k *kernel) record(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	k.trace.Write([]byte(line))
	k.trace.Write([]byte{'\n'})
	k.sim.tail(line)
	if k.sim.full != nil {
		k.sim.full = append(k.sim.full, line)
	}
}

// alloc gives f the lowest free number that is not tainted (k.mu is held).
func (k *kernel) alloc(f *file) int {
	f.refs++
	for i := 3; i < len(k.fds); i++ {
		if k.fds[i].f == nil && !k.fds[i].tainted {
			k.fds[i] = slot{f: f}
			return i
		}
	}
	for len(k.fds) < 3 {
		k.fds = append(k.fds, slot{f: &file{kind: fileForeign, refs: 1}}) // stdin, stdout, stderr
	}
	k.fds = append(k.fds, slot{f: f})
	return len(k.fds) - 1
}

func (k *kernel) newFile(kind fileKind) *file {
	k.births++
	return &file{id: k.births, kind: kind}
}

// get returns the file of number fd for a call of the runtime, recording a
// misuse when the number is not the runtime's (k.mu is held).
func (k *kernel) get(op string, fd int) (*file, syscall.Errno) {
	if fd < 0 || fd >= len(k.fds) {
		return nil, syscall.EBADF
	}
	s := &k.fds[fd]
	if s.tainted && s.learnt {
		k.sim.violate("D2", "%s on fd %d after the runtime was told it is invalid", op, fd)
	}
	if s.f == nil {
		if s.tainted {
			s.learnt = true
		}
		if s.closed {
			k.sim.violate("D4", "%s on fd %d after the runtime closed it", op, fd)
		}
		return nil, syscall.EBADF
	}
	if s.tainted && s.f.kind == fileForeign && s.learnt {
		k.sim.violate("D2", "%s on fd %d, which another owner holds since the runtime learnt it was invalid", op, fd)
	}
	return s.f, 0
}

// release drops one number's reference to f (k.mu is held).
func (k *kernel) release(fd int) {
	f := k.fds[fd].f
	k.fds[fd].f = nil
	delete(k.owned, fd)
	f.refs--
	if f.refs > 0 {
		return
	}
	switch f.kind {
	case fileListener:
		delete(k.addrs, f.lkey)
		for _, e := range f.backlog {
			e.closed = true
			k.closeEnd(e)
		}
		f.backlog = nil
	case fileConn:
		f.end.closed = true
		if len(f.end.in().buf) > 0 {
			// Closed with data unread: Linux resets the connection (a RST;
			// on a Unix socket, ECONNRESET for the peer).
			k.resetConn(f.end.c, f.end)
		}
		k.closeEnd(f.end)
	}
	for _, p := range k.pollers {
		p.dropFile(f)
	}
}

// closeEnd makes the end's close visible to the other end: EOF after the
// data already sent.
func (k *kernel) closeEnd(e *end) {
	e.out().eof = true
}

// invalidate closes number fd behind the runtime's back, as another owner of
// the process would; with reuse, another owner opens a file at once and is
// given that number (k.mu is held).
func (k *kernel) invalidate(fd int, reuse bool) {
	if fd < 0 || fd >= len(k.fds) || k.fds[fd].f == nil {
		return
	}
	if f := k.fds[fd].f; f.kind == fileConn {
		f.end.invalidated = true
	}
	k.release(fd)
	k.fds[fd].tainted = true
	k.fds[fd].learnt = false
	k.record("invalidate fd=%d reuse=%v", fd, reuse)
	if reuse {
		f := k.newFile(fileForeign)
		f.refs = 1
		k.fds[fd].f = f
	}
}

// key is the address space's name of addr.
func addrKey(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return "tcp:" + strconv.Itoa(a.Port)
	case *net.UnixAddr:
		return "unix:" + a.Name
	case *vsock.Addr:
		return "vsock:" + strconv.Itoa(int(a.ContextID)) + ":" + strconv.Itoa(int(a.Port))
	}
	return a.Network() + ":" + a.String()
}

// ephemeral gives a fresh local address of the family of a.
func (k *kernel) ephemeral(fam sockets.Family, a net.Addr) net.Addr {
	k.ports++
	switch a := a.(type) {
	case *net.TCPAddr:
		ip := net.IPv4(10, 0, 0, 2).To4()
		if fam == sockets.FamilyInet6 {
			ip = net.ParseIP("fd00::2")
		}
		return &net.TCPAddr{IP: ip, Port: k.ports}
	case *vsock.Addr:
		return &vsock.Addr{ContextID: 3, Port: uint32(k.ports)}
	case *net.UnixAddr:
		return &net.UnixAddr{Net: "unix", Name: a.Name + "#" + strconv.Itoa(k.ports)}
	}
	return a
}

// withPort fills in a bound address's port when it asked for 0.
func (k *kernel) withPort(a net.Addr) net.Addr {
	switch t := a.(type) {
	case *net.TCPAddr:
		if t.Port == 0 {
			k.ports++
			return &net.TCPAddr{IP: t.IP, Port: k.ports, Zone: t.Zone}
		}
	case *vsock.Addr:
		if t.Port == 0 {
			k.ports++
			return &vsock.Addr{ContextID: t.ContextID, Port: uint32(k.ports)}
		}
	}
	return a
}

// newConn makes a connection of the family between two ends.
func (k *kernel) newConn(fam sockets.Family) *conn {
	c := &conn{fam: fam}
	for i := range c.pipes {
		c.pipes[i].cap = k.sockBuf
	}
	for i := range c.ends {
		c.ends[i] = &end{c: c, side: i}
	}
	return c
}
