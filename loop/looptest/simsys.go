//go:build linux || darwin || freebsd

package looptest

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// simSys is the simulated kernel's sockets.Syscalls.
type simSys struct{ k *kernel }

var _ sockets.Syscalls = simSys{}

// call opens one system call of the runtime: it takes the lock and counts it.
// A loop that makes maxTurnCalls of them in one turn without waiting is in a
// runaway action list (a retry that can never succeed, say) that no turn
// limit would end: the call records the liveness violation and panics, which
// the loop's fault boundary turns into its failure, so that the run ends and
// reports it.
func (s simSys) call() *kernel {
	k := s.k
	k.mu.Lock()
	k.nsys++
	if k.turnCalls++; k.turnCalls == maxTurnCalls {
		k.sim.violate("liveness", "a loop made %d system calls in one turn without waiting", maxTurnCalls)
		k.mu.Unlock()
		panic(fmt.Sprintf("looptest: %d system calls in one turn without waiting", maxTurnCalls))
	}
	return k
}

// maxTurnCalls bounds the system calls of one turn: far above what any
// schedule's loop makes between two waits.
const maxTurnCalls = 100000

func (s simSys) Socket(f sockets.Family) (int, error) {
	k := s.call()
	defer k.mu.Unlock()
	if e := k.fault(OpAccept, -1, faultSocket); e != 0 {
		k.record("socket %v = %v", f, e)
		return 0, e
	}
	fl := k.newFile(fileSocket)
	fl.fam = f
	fd := k.alloc(fl)
	k.owned[fd] = true
	k.record("socket %v = %d", f, fd)
	return fd, nil
}

func (s simSys) Bind(fd int, addr net.Addr) error {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("bind", fd)
	if e != 0 {
		return e
	}
	if f.kind != fileSocket || f.laddr != nil {
		return syscall.EINVAL
	}
	a := k.withPort(addr)
	if k.addrs[addrKey(a)] != nil || k.remotes[addrKey(a)] != nil {
		k.record("bind fd=%d %v = EADDRINUSE", fd, a)
		return syscall.EADDRINUSE
	}
	f.laddr = a
	k.bound[addrKey(a)] = true
	k.record("bind fd=%d %v", fd, a)
	return nil
}

func (s simSys) Listen(fd, backlog int) error {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("listen", fd)
	if e != 0 {
		return e
	}
	if f.kind != fileSocket || f.laddr == nil {
		return syscall.EINVAL
	}
	key := addrKey(f.laddr)
	if k.addrs[key] != nil {
		return syscall.EADDRINUSE
	}
	f.kind, f.lkey, f.blmax = fileListener, key, min(backlog, k.backlogN)
	k.addrs[key] = f
	k.record("listen fd=%d %s", fd, key)
	return nil
}

func (s simSys) Accept(fd int) (int, net.Addr, error) {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("accept", fd)
	if e != 0 {
		k.record("accept fd=%d = %v", fd, e)
		return 0, nil, e
	}
	if f.kind != fileListener {
		return 0, nil, syscall.EINVAL
	}
	if e := k.fault(OpAccept, fd, faultAccept); e != 0 {
		k.record("accept fd=%d = %v", fd, e)
		return 0, nil, e
	}
	if len(f.backlog) == 0 {
		k.record("accept fd=%d = EAGAIN", fd)
		return 0, nil, syscall.EAGAIN
	}
	en := f.backlog[0]
	f.backlog = f.backlog[1:]
	nf := k.newFile(fileConn)
	nf.fam, nf.end, nf.laddr = f.fam, en, en.laddr
	en.file = nf
	nfd := k.alloc(nf)
	k.owned[nfd] = true
	k.record("accept fd=%d = %d from %v", fd, nfd, en.raddr)
	return nfd, en.raddr, nil
}

func (s simSys) Connect(fd int, addr net.Addr) error {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("connect", fd)
	if e != 0 {
		return e
	}
	if f.kind != fileSocket {
		return syscall.EISCONN
	}
	if e := k.fault(OpConnect, fd, faultConnect); e != 0 {
		k.record("connect fd=%d = %v", fd, e)
		return e
	}
	key := addrKey(addr)
	l := k.addrs[key]
	if k.holes[key] && f.fam == sockets.FamilyUnix {
		// A Unix listener that never answers is one whose backlog stays full.
		k.record("connect fd=%d %s = EAGAIN (never answered)", fd, key)
		return syscall.EAGAIN
	}
	if f.fam == sockets.FamilyUnix && k.remotes[key] == nil {
		// A Unix connect is answered at once: refused, or queued.
		switch {
		case l == nil && k.bound[key]:
			k.record("connect fd=%d %s = ECONNREFUSED", fd, key)
			return syscall.ECONNREFUSED
		case l == nil:
			k.record("connect fd=%d %s = ENOENT", fd, key)
			return syscall.ENOENT
		case len(l.backlog) >= l.blmax:
			k.record("connect fd=%d %s = EAGAIN", fd, key)
			return syscall.EAGAIN
		}
	}
	c := k.newConn(f.fam)
	me := c.ends[0]
	me.file, me.laddr, me.raddr = f, k.ephemeral(f.fam, addr), addr
	f.kind, f.end, f.laddr = fileConn, me, me.laddr
	me.connecting = true
	other := c.ends[1]
	other.laddr, other.raddr = addr, me.laddr
	switch {
	case k.holes[key]:
		me.unanswered = true // no answer, ever: nothing to accept, nothing refused
	case k.remotes[key] != nil:
		r := k.remotes[key]
		other.peer = r.accept(other)
	case k.addrs[key] != nil && len(k.addrs[key].backlog) < k.addrs[key].blmax:
		l := k.addrs[key]
		l.backlog = append(l.backlog, other)
	default:
		me.refused = true
		c.pipes[0].eof, c.pipes[1].eof = true, true
	}
	if f.fam == sockets.FamilyUnix {
		me.connecting = false
		k.record("connect fd=%d %s = 0", fd, key)
		return nil
	}
	k.record("connect fd=%d %s = EINPROGRESS", fd, key)
	return syscall.EINPROGRESS
}

// settleConnect finishes a pending connect (k.mu is held): the simulated
// network answers at the next poll.
func (k *kernel) settleConnect(e *end) {
	if !e.connecting || e.unanswered {
		return
	}
	e.connecting = false
	if e.refused {
		e.connErr = syscall.ECONNREFUSED
	}
}

func (s simSys) Read(fd int, p []byte) (int, error) {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("read", fd)
	if e != 0 {
		k.record("read fd=%d = EBADF", fd)
		return 0, e
	}
	if f.kind == fileForeign {
		k.record("read fd=%d (foreign) = 0", fd)
		return 0, nil
	}
	if f.kind != fileConn {
		return 0, syscall.ENOTCONN
	}
	en := f.end
	if en.connecting {
		return 0, syscall.ENOTCONN
	}
	if en.refused {
		if e := en.connErr; e != 0 || !en.errTaken {
			en.connErr, en.errTaken = 0, true
			k.record("read fd=%d = ECONNREFUSED", fd)
			return 0, syscall.ECONNREFUSED
		}
		return 0, nil
	}
	n := len(p)
	class := faultRead
	if en.c.reset {
		class = faultDead // the reset is the answer; only EBADF comes before it
	}
	if fe := k.fault(OpRead, fd, class); fe != 0 {
		if fe != errShort {
			k.record("read fd=%d = %v", fd, fe)
			if fe == syscall.ECONNRESET {
				k.resetConn(en.c, en) // this read took the error
			}
			return 0, fe
		}
		n = k.shortLen(n)
	}
	in := en.in()
	if e := en.takeReset(); e != 0 {
		k.record("read fd=%d = %v", fd, e)
		return 0, e
	}
	switch {
	case en.c.reset:
		k.record("read fd=%d = 0 (reset)", fd)
		return 0, nil
	case len(in.buf) > 0:
		n = copy(p[:n], in.buf)
		in.buf = in.buf[n:]
		en.lastRead = time.Now()
		k.record("read fd=%d = %d", fd, n)
		return n, nil
	case in.eof || en.shutRd:
		k.record("read fd=%d = 0", fd)
		return 0, nil
	}
	k.record("read fd=%d = EAGAIN", fd)
	return 0, syscall.EAGAIN
}

func (s simSys) Write(fd int, p []byte) (int, error) {
	return s.writev(fd, [][]byte{p})
}

func (s simSys) Writev(fd int, bufs [][]byte) (int, error) {
	if len(bufs) > sockets.MaxIovecs {
		bufs = bufs[:sockets.MaxIovecs]
	}
	return s.writev(fd, bufs)
}

func (s simSys) writev(fd int, bufs [][]byte) (int, error) {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("write", fd)
	if e != 0 {
		k.record("write fd=%d = EBADF", fd)
		return 0, e
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if f.kind == fileForeign {
		k.record("write fd=%d (foreign) = %d", fd, total)
		return total, nil
	}
	if f.kind != fileConn {
		return 0, syscall.ENOTCONN
	}
	en := f.end
	if en.connecting {
		return 0, syscall.ENOTCONN
	}
	if en.refused {
		k.record("write fd=%d = EPIPE (refused)", fd)
		return 0, syscall.EPIPE
	}
	limit := total
	class := faultWrite
	if en.c.reset || en.out().eof || en.other().closed {
		// A write the kernel fails anyway (EPIPE, ECONNRESET) is never
		// answered EAGAIN, EINTR or short first: only EBADF can come before.
		class = faultDead
	}
	if fe := k.fault(OpWrite, fd, class); fe != 0 {
		if fe != errShort {
			k.record("write fd=%d = %v", fd, fe)
			if fe == syscall.ECONNRESET || fe == syscall.EPIPE {
				k.resetConn(en.c, en)
			}
			return 0, fe
		}
		limit = k.shortLen(total)
	}
	out := en.out()
	if e := en.takeReset(); e != 0 {
		k.record("write fd=%d = %v", fd, e)
		return 0, e
	}
	switch {
	case en.c.reset:
		k.record("write fd=%d = EPIPE", fd)
		return 0, syscall.EPIPE
	case out.eof:
		k.record("write fd=%d = EPIPE (shut)", fd)
		return 0, syscall.EPIPE
	case en.other().closed && en.c.fam == sockets.FamilyUnix:
		k.record("write fd=%d = EPIPE (peer closed)", fd)
		return 0, syscall.EPIPE
	case en.other().closed:
		// TCP takes the write; the peer, closed, answers it with a RST.
		k.resetConn(en.c, nil)
		en.lastWrite = time.Now()
		k.record("write fd=%d = %d (peer closed: answered with a reset)", fd, total)
		return total, nil
	}
	limit = min(limit, out.free())
	if limit == 0 {
		k.record("write fd=%d = EAGAIN", fd)
		return 0, syscall.EAGAIN
	}
	n := 0
	for _, b := range bufs {
		c := min(len(b), limit-n)
		out.buf = append(out.buf, b[:c]...)
		n += c
		if n == limit {
			break
		}
	}
	en.lastWrite = time.Now()
	k.record("write fd=%d = %d", fd, n)
	return n, nil
}

// resetConn breaks c with a RST (k.mu is held): each end but by, whose own
// call reported it, has the error to take.
func (k *kernel) resetConn(c *conn, by *end) {
	if c.reset {
		return
	}
	c.reset = true
	for i, e := range c.ends {
		switch {
		case e == by:
		case e.in().eof:
			c.rst[i] = syscall.EPIPE // a RST after the FIN: Linux's CLOSE_WAIT says EPIPE
		default:
			c.rst[i] = syscall.ECONNRESET
		}
	}
}

func (s simSys) Shutdown(fd int, how sockets.ShutdownHow) error {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("shutdown", fd)
	if e != 0 {
		return e
	}
	if f.kind != fileConn {
		return syscall.ENOTCONN
	}
	if how == sockets.ShutWrite || how == sockets.ShutBoth {
		f.end.out().eof = true
	}
	if how == sockets.ShutRead || how == sockets.ShutBoth {
		f.end.shutRd = true
	}
	k.record("shutdown fd=%d %v", fd, how)
	return nil
}

func (s simSys) Close(fd int) error {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("close", fd)
	if e != 0 {
		k.record("close fd=%d = EBADF", fd)
		return e
	}
	if _, ok := k.owned[fd]; !ok {
		// Another owner took the number behind the runtime's back. Had a call
		// told the runtime (get reports that as D2), this close is a
		// violation; otherwise no runtime could have known without asking:
		// counted, and the other owner's file stays open.
		if !k.fds[fd].learnt {
			k.unknowing++
			k.record("close fd=%d (%v of another owner; the runtime was not told)", fd, f.kind)
		}
		return nil
	}
	fe := k.fault(OpClose, fd, faultClose)
	if fe == syscall.EBADF {
		k.record("close fd=%d = EBADF", fd)
		return fe // closed behind the runtime's back just before
	}
	k.release(fd)
	k.fds[fd].closed = true
	k.faults.full = false // a free slot in the table
	k.record("close fd=%d", fd)
	if fe != 0 {
		return fe // closed, and yet EINTR: the number is gone all the same
	}
	return nil
}

func (s simSys) GetsockoptInt(fd int, opt sockets.SockOpt) (int, error) {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("getsockopt", fd)
	if e != 0 {
		return 0, e
	}
	if f.kind == fileForeign {
		return 0, syscall.ENOTSOCK
	}
	switch opt {
	case sockets.OptType:
		return int(syscall.SOCK_STREAM), nil
	case sockets.OptError:
		if f.kind == fileConn {
			v := f.end.connErr
			f.end.connErr = 0
			if v != 0 {
				f.end.errTaken = true
			}
			return int(v), nil
		}
	}
	return 0, nil
}

func (s simSys) SetsockoptInt(fd int, opt sockets.SockOpt, value int) error {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("setsockopt", fd)
	if e != 0 {
		return e
	}
	if f.kind == fileForeign {
		return syscall.ENOTSOCK
	}
	return nil
}

func (s simSys) Getsockname(fd int) (net.Addr, error) {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("getsockname", fd)
	if e != 0 {
		return nil, e
	}
	if f.kind == fileForeign {
		return nil, syscall.ENOTSOCK
	}
	return f.laddr, nil
}

func (s simSys) Getpeername(fd int) (net.Addr, error) {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("getpeername", fd)
	if e != 0 {
		return nil, e
	}
	if f.kind != fileConn || f.end.connecting || f.end.refused {
		return nil, syscall.ENOTCONN
	}
	return f.end.raddr, nil
}

func (s simSys) SetNonblock(fd int) error {
	k := s.call()
	defer k.mu.Unlock()
	_, e := k.get("fcntl", fd)
	if e != 0 {
		return e
	}
	return nil
}

func (s simSys) DupCloexec(fd int) (int, error) {
	k := s.call()
	defer k.mu.Unlock()
	f, e := k.get("fcntl", fd)
	if e != 0 {
		return 0, e
	}
	nfd := k.alloc(f)
	k.owned[nfd] = true
	return nfd, nil
}

func (s simSys) Unlink(string) error { return nil }
