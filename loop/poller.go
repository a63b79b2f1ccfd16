package loop

import (
	"errors"
	"time"
)

// pollEvent is one readiness report.
type pollEvent struct {
	token    uint64 // the registration's token (slot<<32 | generation), given at add
	readable bool   // EPOLLIN / EVFILT_READ
	writable bool   // EPOLLOUT / EVFILT_WRITE
	eofHint  bool   // EPOLLRDHUP / EV_EOF on the read filter (R3: a hint only)
	hangup   bool   // EPOLLHUP or EPOLLERR / EV_EOF with an error, EV_ERROR
}

// poller is one epoll or kqueue instance with its wakeup descriptor.
//
// Every method but wake and fd belongs to the loop's goroutine: add, modify,
// remove and wait are never called concurrently with each other, and close or
// forget only after the last wait has returned. wake may race with all of them,
// close and forget included.
//
// The backends differ where the kernels do, and the loop must allow for both:
//   - epoll reports one event per descriptor; kqueue one per filter, so a
//     descriptor both readable and writable may come as two events with the
//     same token in one wait.
//   - epoll reports EPOLLHUP and EPOLLERR even with no interest; kqueue reports
//     nothing for a descriptor whose filters are both disabled.
//   - Readiness is level-triggered on both: interest stays armed until modify
//     or remove changes it, and a condition still true is reported again by
//     the next wait.
type poller interface {
	// add registers fd with token and the given interest (both false is allowed:
	// registered with no interest; on epoll that still reports HUP/ERR).
	add(fd int, token uint64, read, write bool) error
	// modify sets fd's interest.
	modify(fd int, token uint64, read, write bool) error
	// remove deregisters fd.
	remove(fd int) error
	// wait blocks until readiness, a wake, or the timeout (negative: forever;
	// 0: poll), filling events[:cap(events)]; it returns how many. A wake is
	// consumed inside wait and not reported as an event, so a wait that was only
	// woken returns 0, like a timeout. Results are raw: (n, unix.Errno) with
	// EINTR returned, not retried, so the generated classifier
	// (sockets.ClassifyPollerWait) sees it.
	wait(events []pollEvent, timeout time.Duration) (int, error)
	// wake makes a concurrent or the next wait return; safe from any goroutine,
	// cheap when called many times (at most one wake is pending).
	wake() error
	// close releases the poller and its wakeup descriptor; forget releases only
	// the wakeup descriptor and never closes the poller's number (used when the
	// poller's descriptor was invalidated outside the process, D2). After either,
	// both return errPollerClosed and make no system call.
	close() error
	forget() error
	// fd returns the poller's descriptor; -1 after close or forget.
	fd() int
	// probe asks the kernel whether the poller's own descriptors still answer,
	// with a change that alters nothing (re-arming the wakeup): nil, or the raw
	// errno. An EBADF from add, modify or remove names either the descriptor
	// changed or the poller; EBADF from probe too says it was the poller.
	probe() error
}

// errPollerClosed is returned by wake, close and forget on a poller already
// closed or forgotten.
var errPollerClosed = errors.New("loop: poller closed")
