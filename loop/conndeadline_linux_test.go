package loop

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// The tests of this file hold the adapter's deadlines to their times: a call
// that times out returns no earlier than its deadline (the system clock's
// timers fire no earlier than asked) and within lateBound of it, a bound
// generous enough for a loaded machine under -race.

const lateBound = 5 * time.Second

// wantTimeoutAt checks that err is op's timeout and that the call ended, at
// end, no earlier than dl and within lateBound of it.
func wantTimeoutAt(t *testing.T, err error, op string, dl, end time.Time) {
	t.Helper()
	wantTimeout(t, err, op)
	if end.Before(dl) {
		t.Fatalf("%s timed out %v before its deadline", op, dl.Sub(end))
	}
	if late := end.Sub(dl); late > lateBound {
		t.Fatalf("%s timed out %v after its deadline", op, late)
	}
}

// bothEnds runs f as subtests network/end over TCP and Unix, each on a fresh
// pair (connPair) and with checkFDs: on the dialed end with the accepted one
// as its peer, and on the accepted end with the dialed one as its peer.
func bothEnds(t *testing.T, f func(t *testing.T, c, peer net.Conn)) {
	noLeaks(t)
	for _, network := range []string{"tcp", "unix"} {
		for _, end := range []string{"dialed", "accepted"} {
			t.Run(network+"/"+end, func(t *testing.T) {
				checkFDs(t)
				c1, c2, stop, err := connPair(t, network)
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
				if end == "accepted" {
					c1, c2 = c2, c1
				}
				f(t, c1, c2)
			})
		}
	}
}

type ioResult struct {
	n   int
	err error
	end time.Time
}

// readAsync starts a Read of up to 16 bytes on c.
func readAsync(c net.Conn) chan ioResult {
	res := make(chan ioResult, 1)
	go func() {
		n, err := c.Read(make([]byte, 16))
		res <- ioResult{n, err, time.Now()}
	}()
	return res
}

// wantReadWorks checks that c, its deadline cleared, reads what peer writes.
func wantReadWorks(t *testing.T, c, peer net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Time{})
	go peer.Write([]byte("still works"))
	got := make([]byte, len("still works"))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "still works" {
		t.Fatalf("read after the timeouts: %q, %v", got, err)
	}
}

// TestConnReadDeadlineExact: a Read with a deadline 50ms ahead, and nothing
// to read, returns os.ErrDeadlineExceeded not before the deadline and within
// lateBound of it, three times in a row, on either end; then the end reads.
func TestConnReadDeadlineExact(t *testing.T) {
	bothEnds(t, func(t *testing.T, c, peer net.Conn) {
		for range 3 {
			dl := time.Now().Add(50 * time.Millisecond)
			c.SetReadDeadline(dl)
			_, err := c.Read(make([]byte, 16))
			wantTimeoutAt(t, err, "read", dl, time.Now())
		}
		wantReadWorks(t, c, peer)
	})
}

// TestConnReadDeadlineMovedEarlier: a Read waiting under a deadline an hour
// ahead times out at a deadline moved to 50ms ahead, not before it.
func TestConnReadDeadlineMovedEarlier(t *testing.T) {
	bothEnds(t, func(t *testing.T, c, peer net.Conn) {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		res := readAsync(c)
		time.Sleep(20 * time.Millisecond) // let the Read wait (it holds either way)
		dl := time.Now().Add(50 * time.Millisecond)
		c.SetReadDeadline(dl)
		r, ok := within(res, lateBound+time.Second)
		if !ok {
			t.Fatal("the Read did not end at its moved deadline")
		}
		wantTimeoutAt(t, r.err, "read", dl, r.end)
		wantReadWorks(t, c, peer)
	})
}

// TestConnReadDeadlineMovedLater: a Read waiting under a deadline 300ms
// ahead, moved to 600ms ahead before the first passed, times out at the later
// one. A machine too loaded to move it in time makes the attempt inconclusive;
// it is tried up to 5 times.
func TestConnReadDeadlineMovedLater(t *testing.T) {
	bothEnds(t, func(t *testing.T, c, peer net.Conn) {
		for attempt := 1; ; attempt++ {
			first := time.Now().Add(300 * time.Millisecond)
			c.SetReadDeadline(first)
			res := readAsync(c)
			time.Sleep(20 * time.Millisecond)
			dl := time.Now().Add(600 * time.Millisecond)
			c.SetReadDeadline(dl)
			moved := time.Now()
			r, ok := within(res, lateBound+time.Second)
			if !ok {
				t.Fatal("the Read did not end at its moved deadline")
			}
			if !moved.Before(first) {
				if attempt == 5 {
					t.Fatal("in 5 attempts the deadline was never moved before the first one passed")
				}
				t.Logf("attempt %d: the deadline moved %v after the first one passed; again", attempt, moved.Sub(first))
				continue
			}
			wantTimeoutAt(t, r.err, "read", dl, r.end)
			break
		}
		wantReadWorks(t, c, peer)
	})
}

// TestConnReadDeadlineTwoReaders: of two Reads at once, one waits for the
// other to finish; a deadline set while both wait ends both at it.
func TestConnReadDeadlineTwoReaders(t *testing.T) {
	bothEnds(t, func(t *testing.T, c, peer net.Conn) {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		res := []chan ioResult{readAsync(c), readAsync(c)}
		time.Sleep(20 * time.Millisecond)
		dl := time.Now().Add(50 * time.Millisecond)
		c.SetReadDeadline(dl)
		for i, ch := range res {
			r, ok := within(ch, lateBound+time.Second)
			if !ok {
				t.Fatalf("Read %d did not end at the deadline", i)
			}
			wantTimeoutAt(t, r.err, "read", dl, r.end)
		}
		wantReadWorks(t, c, peer)
	})
}

// writeUntilTimeout writes stream(seed, ...) to c in 1 MiB Writes until one
// fails (1 GiB at most) and returns the bytes the Writes reported written, the
// last Write's error and when it returned. Before it starts it calls begin.
func writeUntilTimeout(c net.Conn, seed uint64, begin func()) (total int64, end time.Time, err error) {
	src := stream(seed, 1<<30)
	buf := make([]byte, 1<<20)
	begin()
	for total < 1<<30 {
		io.ReadFull(src, buf)
		n, err := c.Write(buf)
		total += int64(n)
		if err != nil {
			return total, time.Now(), err
		}
	}
	return total, time.Now(), nil
}

// wantWrittenInOrder checks what the peer reads: the first total bytes of
// stream(seed, ...), then "END" that c writes with its deadline cleared, then,
// once c closes, io.EOF. Bytes a timed-out Write counted as written (queued
// ones included, as documented) must arrive, and no others.
func wantWrittenInOrder(t *testing.T, c, peer net.Conn, seed uint64, total int64) {
	t.Helper()
	c.SetWriteDeadline(time.Time{})
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("END"))
		wrote <- err
	}()
	peer.SetReadDeadline(time.Now().Add(time.Minute))
	got, n, err := digest(io.LimitReader(peer, total))
	if err != nil || n != total || got != streamDigest(seed, total) {
		t.Fatalf("the peer read %d bytes (%v), want the %d the Writes counted, in order", n, err, total)
	}
	end := make([]byte, 3)
	if _, err := io.ReadFull(peer, end); err != nil || string(end) != "END" {
		t.Fatalf("after the %d bytes the peer read %q, %v; want END", total, end, err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("Write after the timeout: %v", err)
	}
	c.Close()
	if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after END the peer read %d bytes, %v; want io.EOF", n, err)
	}
}

// TestConnWriteDeadlineNoReader: Writes to a peer that reads nothing, under a
// deadline 100ms ahead, fill the buffers until one returns
// os.ErrDeadlineExceeded, not before the deadline and within lateBound of it;
// the peer then reads exactly the bytes the Writes counted, in order.
func TestConnWriteDeadlineNoReader(t *testing.T) {
	bothEnds(t, func(t *testing.T, c, peer net.Conn) {
		var dl time.Time
		total, end, err := writeUntilTimeout(c, 7, func() {
			dl = time.Now().Add(100 * time.Millisecond)
			c.SetWriteDeadline(dl)
		})
		wantTimeoutAt(t, err, "write", dl, end)
		t.Logf("%d bytes written before the deadline", total)
		wantWrittenInOrder(t, c, peer, 7, total)
	})
}

// TestConnWriteDeadlineMovedWhileBlocked: Writes without a deadline to a peer
// that reads nothing end up waiting; a deadline set then, 50ms ahead, ends
// the waiting Write with os.ErrDeadlineExceeded, not before it; the peer then
// reads exactly the bytes the Writes counted, in order.
func TestConnWriteDeadlineMovedWhileBlocked(t *testing.T) {
	bothEnds(t, func(t *testing.T, c, peer net.Conn) {
		type result struct {
			total int64
			err   error
			end   time.Time
		}
		res := make(chan result, 1)
		started := make(chan struct{})
		go func() {
			total, end, err := writeUntilTimeout(c, 8, func() { close(started) })
			res <- result{total, err, end}
		}()
		<-started
		time.Sleep(100 * time.Millisecond) // let the Writes fill the buffers (it holds either way)
		dl := time.Now().Add(50 * time.Millisecond)
		c.SetWriteDeadline(dl)
		r, ok := within(res, lateBound+time.Second)
		if !ok {
			t.Fatal("the waiting Write did not end at the deadline set while it waited")
		}
		wantTimeoutAt(t, r.err, "write", dl, r.end)
		wantWrittenInOrder(t, c, peer, 8, r.total)
	})
}

// TestConnWriteDeadlineTwoWriters: of two Writes at once to a peer that reads
// nothing, one waits for the other; a deadline set while both wait ends both
// at it, and the peer reads the bytes they counted: each Write's own bytes
// whole and in order, the two not interleaved.
func TestConnWriteDeadlineTwoWriters(t *testing.T) {
	bothEnds(t, func(t *testing.T, c, peer net.Conn) {
		const size = 32 << 20 // more than the buffers hold
		bufs := [][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)}
		res := make([]chan ioResult, 2)
		var wg sync.WaitGroup
		for i := range bufs {
			res[i] = make(chan ioResult, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := c.Write(bufs[i])
				res[i] <- ioResult{n, err, time.Now()}
			}()
		}
		time.Sleep(100 * time.Millisecond)
		dl := time.Now().Add(50 * time.Millisecond)
		c.SetWriteDeadline(dl)
		counts := map[byte]int{}
		for i, ch := range res {
			r, ok := within(ch, lateBound+time.Second)
			if !ok {
				t.Fatalf("Write %d did not end at the deadline", i)
			}
			wantTimeoutAt(t, r.err, "write", dl, r.end)
			if r.n >= size {
				t.Fatalf("Write %d of %d bytes to a peer that reads nothing reported %d written", i, size, r.n)
			}
			counts[bufs[i][0]] = r.n
		}
		wg.Wait()
		c.SetWriteDeadline(time.Time{})
		go c.Write([]byte("END"))
		peer.SetReadDeadline(time.Now().Add(time.Minute))
		got := make([]byte, counts['a']+counts['b']+3)
		if _, err := io.ReadFull(peer, got); err != nil {
			t.Fatalf("the peer read: %v; want the %d bytes the Writes counted, then END", err, len(got))
		}
		body := got[:len(got)-3]
		runs := 0
		for i := range body {
			if i == 0 || body[i] != body[i-1] {
				runs++
			}
		}
		if string(got[len(got)-3:]) != "END" || bytes.Count(body, []byte{'a'}) != counts['a'] || bytes.Count(body, []byte{'b'}) != counts['b'] || runs > 2 {
			t.Fatalf("the peer read %d a's and %d b's in %d runs, then %q; want %d and %d in at most 2 runs, then END",
				bytes.Count(body, []byte{'a'}), bytes.Count(body, []byte{'b'}), runs, got[len(got)-3:], counts['a'], counts['b'])
		}
	})
}
