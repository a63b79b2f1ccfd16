package loop

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnSemExcludesAndWakes: goroutines taking a Conn's semaphore, some
// giving up at a deadline, are admitted one at a time, and every one that
// does not give up is admitted: no release is lost, whichever goroutine
// releases (as a write's completion releases for a Write that left).
func TestConnSemExcludesAndWakes(t *testing.T) {
	c := newConn("tcp", nil, systemClock{})
	var inside, admitted, gaveUp atomic.Int32
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := makeDeadline(systemClock{})
			for r := range rounds {
				patient := (w+r)%3 != 0
				if patient {
					d.set(time.Time{})
				} else {
					d.set(time.Now().Add(20 * time.Microsecond))
				}
				if err := c.acquire(&c.rsem, &d, "read"); err != nil {
					if patient {
						t.Errorf("a Read with no deadline was refused: %v", err)
						return
					}
					gaveUp.Add(1)
					continue
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				admitted.Add(1)
				inside.Add(-1)
				if r%2 == 0 {
					c.rsem.release()
				} else {
					// Released by another goroutine.
					done := make(chan struct{})
					go func() { c.rsem.release(); close(done) }()
					<-done
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatalf("waiters stuck: %d admitted, %d gave up, of %d", admitted.Load(), gaveUp.Load(), workers*rounds)
	}
	if got := admitted.Load() + gaveUp.Load(); got != workers*rounds {
		t.Fatalf("%d admitted + %d gave up, want %d in all", admitted.Load(), gaveUp.Load(), workers*rounds)
	}
	if !c.rsem.mu.TryLock() {
		t.Fatal("the semaphore is held after every holder released it")
	}
	t.Logf("%d admitted, %d gave up", admitted.Load(), gaveUp.Load())
}
