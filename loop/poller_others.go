//go:build !linux && !darwin && !freebsd

package loop

import (
	"fmt"
	"runtime"
)

// pollSyscalls has nothing to replace on a system with no poller.
type pollSyscalls interface{}

// errPollerNotImplemented is NewPoller's result on a system with neither epoll
// nor kqueue.
var errPollerNotImplemented = fmt.Errorf("loop: poller not implemented on %s", runtime.GOOS)

// newPoller fails: this system is not supported.
func newPoller(pollSyscalls) (Poller, error) { return nil, errPollerNotImplemented }

// The poller's calls, as errors name them: none exists here.
const (
	pollControlCall = "poller"
	pollRemoveCall  = "poller removal"
)

// concurrentControl: there is no poller here.
func concurrentControl(Poller) bool { return false }
