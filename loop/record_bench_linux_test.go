package loop

import (
	"slices"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	"golang.org/x/sys/unix"
)

// BenchmarkEchoRecord is BenchmarkEchoRuntimeOnly with recording off and on
// (a ring of 4096 steps), one after the other: on costs what four records per
// echo cost (readable, read, writeQueued, wrote). bench/scripts/instructions.sh
// counts its instructions under callgrind.
func BenchmarkEchoRecord(b *testing.B) {
	for _, mode := range []struct {
		name   string
		record int
	}{{"off", 0}, {"on", 4096}} {
		b.Run(mode.name, func(b *testing.B) {
			benchmarkEchoRuntimeOnly(b, &Options{Record: mode.record}, nil)
		})
	}
}

// BenchmarkEchoRecordPaired measures what recording costs in time on a busy
// machine, where two benchmarks run one after the other see different loads:
// two loops, recording off and on, echo in alternating batches of 10000
// (canned system calls, as BenchmarkEchoRuntimeOnly), so that both see the
// same load. It reports the median of the batches' ns per echo of each, and
// the median of what on costs more than off in a pair, in percent. b.N is
// the number of pairs of batches.
func BenchmarkEchoRecordPaired(b *testing.B) {
	const batch = 10000
	off, on := newCannedEcho(b, nil), newCannedEcho(b, &Options{Record: 4096})
	var offNs, onNs []float64
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // each goes first in half the pairs
			offNs = append(offNs, off.batch(b, batch))
			onNs = append(onNs, on.batch(b, batch))
		} else {
			onNs = append(onNs, on.batch(b, batch))
			offNs = append(offNs, off.batch(b, batch))
		}
	}
	more := make([]float64, len(offNs))
	for i := range more {
		more[i] = 100 * (onNs[i] - offNs[i]) / offNs[i]
	}
	median := func(x []float64) float64 { slices.Sort(x); return x[len(x)/2] }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(median(offNs), "ns/echo-off")
	b.ReportMetric(median(onNs), "ns/echo-on")
	b.ReportMetric(median(more), "%more")
}

// cannedEcho is a channel on its own loop whose socket's reads and writes are
// canned (cannedSyscalls), driven by readiness events fed on the loop.
type cannedEcho struct {
	l  *Loop
	ch *Channel
}

func newCannedEcho(b *testing.B, o *Options) *cannedEcho {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fds[1]) })
	fd, err := sockets.AdoptFD(fds[0], &sockets.Options{Syscalls: cannedSyscalls{sockets.System(), 1024}})
	unix.Close(fds[0])
	if err != nil {
		b.Fatal(err)
	}
	l := New(o)
	b.Cleanup(func() { l.Close() })
	ch, err := l.Register(fd, copyEcho{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := <-l.Submit(func() error { return nil }); err != nil {
		b.Fatal(err)
	}
	return &cannedEcho{l, ch}
}

// batch runs n echoes on the loop and returns the ns each took.
func (e *cannedEcho) batch(b *testing.B, n int) float64 {
	var d time.Duration
	err := <-e.l.Submit(func() error {
		ev := PollEvent{Token: e.ch.reg.token(), Readable: true}
		start := time.Now()
		for range n {
			e.ch.ready(ev)
		}
		d = time.Since(start)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return float64(d.Nanoseconds()) / float64(n)
}
