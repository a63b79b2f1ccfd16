package loop

import "time"

// Clock is where a loop reads the time: its timers (connect timeouts, drain
// timeouts, listener backoff), how long its poller may wait, Dial's context
// deadline and its Conns' deadlines. A simulator supplies one whose time moves
// only when it says; the loop itself never sleeps, it waits only inside
// Poller.Wait with a timeout computed from Now.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed and returns a
	// stop function, which reports whether it stopped the call before f ran
	// (time.Timer.Stop's contract). Only Conn deadlines use it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock returns the system's clock: time.Now and time.AfterFunc.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
