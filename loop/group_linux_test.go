package loop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupWaitShutdown: Wait returns nil once a Shutdown from another
// goroutine has stopped every loop cleanly.
func TestGroupWaitShutdown(t *testing.T) {
	checkFDs(t)
	g := NewGroup(2, nil)
	waited := make(chan error, 1)
	go func() { waited <- g.Wait() }()
	shutdown(t, g)
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("Wait after a clean Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after Shutdown")
	}
	if err := g.Wait(); err != nil {
		t.Errorf("Wait again: %v", err)
	}
}

// failingPollers makes the loops' pollers: the ones whose index (in the
// order the loops start) is in fail fail to open, with "poller N".
func failingPollers(fail ...int) func() (Poller, error) {
	var n atomic.Int32
	return func() (Poller, error) {
		i := int(n.Add(1)) - 1
		for _, f := range fail {
			if f == i {
				return nil, fmt.Errorf("poller %d", i)
			}
		}
		return NewPoller()
	}
}

// TestGroupWaitFailure: a loop that failed is Wait's result once the others
// stop too; with several failed, the first in the order of Loops.
func TestGroupWaitFailure(t *testing.T) {
	t.Run("one", func(t *testing.T) {
		checkFDs(t)
		g := NewGroup(2, &Options{NewPoller: failingPollers(1)})
		<-g.Loops()[1].Done()
		waited := make(chan error, 1)
		go func() { waited <- g.Wait() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Shutdown(ctx)
		err := <-waited
		if !errors.Is(err, ErrLoopFailed) || !errorMentions(err, "poller 1") {
			t.Errorf("Wait: %v, want loop 1's failure", err)
		}
	})
	t.Run("all", func(t *testing.T) {
		checkFDs(t)
		g := NewGroup(3, &Options{NewPoller: failingPollers(0, 1, 2)})
		// No Shutdown: every loop stopped by itself.
		err := g.Wait()
		if !errors.Is(err, ErrLoopFailed) || !errorMentions(err, "poller 0") || errorMentions(err, "poller 1") {
			t.Errorf("Wait: %v, want loop 0's failure", err)
		}
	})
}

func errorMentions(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
