package loop

import (
	"errors"
	"time"
)

// PollEvent is one readiness report.
type PollEvent struct {
	Token    uint64 // the registration's token (slot<<32 | generation), given at Add
	Readable bool   // EPOLLIN / EVFILT_READ
	Writable bool   // EPOLLOUT / EVFILT_WRITE
	EOFHint  bool   // EPOLLRDHUP / EV_EOF on the read filter (R3: a hint only)
	Hangup   bool   // EPOLLHUP or EPOLLERR / EV_EOF with an error, EV_ERROR
}

// Poller is one epoll or kqueue instance with its wakeup descriptor, or
// anything that keeps the same contract (Options.NewPoller: a simulator's, a
// wrapper that counts or injects faults). NewPoller returns the system's.
//
// Every method but Wake and FD belongs to the loop's goroutine: Add, Modify,
// Remove and Wait are never called concurrently with each other, and Close or
// Forget only after the last Wait has returned. Wake may race with all of them,
// Close and Forget included. The one exception is the loop's own poller on
// Linux (NewPoller's epoll): on it, a Conn that steps its channel while the
// loop waits calls Modify and Remove during Wait, as epoll allows; a Poller
// given by Options.NewPoller (a wrapper's, a simulator's) keeps this contract.
// Either way no two of Add, Modify and Remove are ever concurrent.
//
// The backends differ where the kernels do, and the loop must allow for both:
//   - epoll reports one event per descriptor; kqueue one per filter, so a
//     descriptor both readable and writable may come as two events with the
//     same token in one wait.
//   - epoll reports EPOLLHUP and EPOLLERR even with no interest; kqueue reports
//     nothing for a descriptor whose filters are both disabled.
//   - Readiness is level-triggered on both: interest stays armed until Modify
//     or Remove changes it, and a condition still true is reported again by
//     the next Wait.
type Poller interface {
	// Add registers fd with token and the given interest (both false is allowed:
	// registered with no interest; on epoll that still reports HUP/ERR).
	Add(fd int, token uint64, read, write bool) error
	// Modify sets fd's interest.
	Modify(fd int, token uint64, read, write bool) error
	// Remove deregisters fd.
	Remove(fd int) error
	// Wait blocks until readiness, a wake, or the timeout (negative: forever;
	// 0: poll), filling events[:cap(events)]; it returns how many. A wake is
	// consumed inside Wait and not reported as an event, so a wait that was only
	// woken returns 0, like a timeout. Results are raw: (n, unix.Errno) with
	// EINTR returned, not retried, so the generated classifier
	// (sockets.ClassifyPollerWait) sees it.
	Wait(events []PollEvent, timeout time.Duration) (int, error)
	// Wake makes a concurrent or the next Wait return; safe from any goroutine,
	// cheap when called many times (at most one wake is pending).
	Wake() error
	// Close releases the poller and its wakeup descriptor; Forget releases only
	// the wakeup descriptor and never closes the poller's number (used when the
	// poller's descriptor was invalidated outside the process, D2). After either,
	// both return ErrPollerClosed and make no system call.
	Close() error
	Forget() error
	// FD returns the poller's descriptor; -1 after Close or Forget.
	FD() int
	// Probe asks the kernel whether the poller's own descriptors still answer,
	// with a change that alters nothing (re-arming the wakeup): nil, or the raw
	// errno. An EBADF from Add, Modify or Remove names either the descriptor
	// changed or the poller; EBADF from Probe too says it was the poller.
	Probe() error
}

// ErrPollerClosed is returned by Wake, Close and Forget on a poller already
// closed or forgotten.
var ErrPollerClosed = errors.New("loop: poller closed")

// NewPoller returns the system's poller: epoll on Linux, kqueue on the BSDs
// and macOS; elsewhere an error saying it is not implemented.
func NewPoller() (Poller, error) { return newPoller(nil) }
