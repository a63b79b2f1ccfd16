//go:build linux || darwin || freebsd

package looptest_test

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

func TestNamedProfiles(t *testing.T) {
	names := looptest.ProfileNames()
	for _, want := range []string{"quiet", "vsock", "hostile"} {
		if _, err := looptest.NamedProfile(want); err != nil {
			t.Errorf("NamedProfile(%q): %v", want, err)
		}
	}
	for _, n := range names {
		if looptest.ProfileDoc(n) == "" {
			t.Errorf("profile %q has no doc", n)
		}
	}
	_, err := looptest.NamedProfile("vmware")
	if err == nil || !strings.Contains(err.Error(), `"vmware"`) || !strings.Contains(err.Error(), strings.Join(names, ", ")) {
		t.Errorf("NamedProfile(vmware) = %v, want an error naming it and the known profiles %v", err, names)
	}
	if p, _ := looptest.NamedProfile("quiet"); p != (looptest.Profile{}) {
		t.Errorf("quiet = %+v, want the zero Profile", p)
	}
	v, _ := looptest.NamedProfile("vsock")
	if v.Spurious == 0 || v.EOFHint == 0 || v.EBADF == 0 || !v.ConnsOnly {
		t.Errorf("vsock = %+v: want spurious readiness, EOF hints and EBADF on connections", v)
	}
}

// TestProfileAtLeastRaisesEveryRate sets one rate field at a time and checks
// AtLeast raises it, and only it: a field added to Profile and forgotten in
// AtLeast fails here.
func TestProfileAtLeastRaisesEveryRate(t *testing.T) {
	typ := reflect.TypeFor[looptest.Profile]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.Uint16 {
			continue
		}
		var base, min looptest.Profile
		reflect.ValueOf(&base).Elem().Field(i).SetUint(10)
		reflect.ValueOf(&min).Elem().Field(i).SetUint(20)
		if got := base.AtLeast(min); reflect.ValueOf(got).Field(i).Uint() != 20 || got.AtLeast(base) != got {
			t.Errorf("AtLeast does not raise %s: %+v", f.Name, got)
		}
		reflect.ValueOf(&base).Elem().Field(i).SetUint(30)
		if got := base.AtLeast(min); got != base {
			t.Errorf("AtLeast lowered %s: %+v", f.Name, got)
		}
	}
	if got := (looptest.Profile{}).AtLeast(looptest.Profile{ConnsOnly: true}); got.ConnsOnly {
		t.Errorf("AtLeast took ConnsOnly from its argument")
	}
}

// TestConnsOnlySparesListenersAndPollers invalidates numbers at a high rate
// with ConnsOnly: connections fail, but no EBADF reaches a listener or a
// poller, so the loops and the listener outlive every connection.
func TestConnsOnlySparesListenersAndPollers(t *testing.T) {
	accepted := func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return echo{}, nil }
	for seed := uint64(1); seed <= 10; seed++ {
		looptest.Simulate(t, seed, func(s *looptest.Sim) {
			g := loop.NewGroup(2, s.Options(nil))
			ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, accepted, nil)
			if err != nil {
				t.Errorf("seed %d: %v", seed, err)
				g.Close()
				return
			}
			s.SetProfile(looptest.Profile{EBADF: 3000, Reuse: 5000, ConnsOnly: true})
			for range 20 {
				p, err := s.Dial(ln.Addr())
				if err != nil {
					t.Errorf("seed %d: %v", seed, err)
					break
				}
				p.Write([]byte("ping"))
				s.Advance(time.Millisecond)
			}
			inj := s.Injected()
			for what, n := range inj {
				if strings.HasSuffix(what, "EBADF") && (strings.HasPrefix(what, "accept") || strings.HasPrefix(what, "pollerWait")) {
					t.Errorf("seed %d: %d × %s with ConnsOnly", seed, n, what)
				}
			}
			if inj["read EBADF"]+inj["write EBADF"]+inj["pollerControl EBADF"]+inj["close EBADF"] == 0 {
				t.Errorf("seed %d: no connection's number was invalidated: %v", seed, inj)
			}
			select {
			case <-ln.Closed():
				t.Errorf("seed %d: the listener closed: %v", seed, ln.Err())
			default:
			}
			for i, l := range g.Loops() {
				select {
				case <-l.Done():
					t.Errorf("seed %d: loop %d stopped: %v", seed, i, l.Wait())
				default:
				}
			}
			s.Faults(false)
			done := false
			s.Go(func() { g.Shutdown(context.Background()); done = true })
			if !s.RunUntil(func() bool { return done }, time.Minute) {
				t.Errorf("seed %d: Shutdown did not return", seed)
			}
		})
	}
}
