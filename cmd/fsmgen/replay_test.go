package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
)

// kernelSpecs are the tables the runtime's machines are generated from.
func kernelSpecs(t *testing.T) []string {
	t.Helper()
	specs, err := filepath.Glob(filepath.Join("..", "..", "spec", "*.yaml"))
	if err != nil || len(specs) == 0 {
		t.Fatalf("no spec files: %v", err)
	}
	return specs
}

type echoHandler struct{ loop.NopHandler }

func (echoHandler) OnRead(c *loop.Channel, p []byte) { c.SendCopy(p, nil) }

// firstRead hands out what its channel reads first.
type firstRead struct {
	loop.NopHandler
	got chan []byte
}

func (h firstRead) OnRead(c *loop.Channel, p []byte) {
	select {
	case h.got <- bytes.Clone(p):
	default:
	}
}

// realRun is a recording of a group of two loops serving TCP echoes on
// loopback, and the dumps DumpOn asked for.
type realRun struct {
	recording []byte
	dumps     [][]byte
}

// recordRun runs the runtime for real, with rings of record steps: a listener,
// echoes over connections that close cleanly, one the peer resets, one that
// stays idle until its idle timeout closes it, and a channel the group dials
// to the listener. Every channel that fails is dumped.
func recordRun(t *testing.T, record int) realRun {
	t.Helper()
	var mu sync.Mutex
	var dumps []*bytes.Buffer
	g, err := loop.StartGroup(2, &loop.Options{Record: record, DumpOn: func(*loop.Channel, error) io.Writer {
		mu.Lock()
		defer mu.Unlock()
		dumps = append(dumps, &bytes.Buffer{})
		return dumps[len(dumps)-1]
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := g.ServeAddress("tcp", "127.0.0.1:0", func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return echoHandler{}, &loop.ChannelOptions{IdleTimeout: 200 * time.Millisecond}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	echo := func(c net.Conn, msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for i := range 3 {
		c := dial()
		echo(c, strings.Repeat("echo", i+1))
		c.Close()
	}
	reset := dial()
	echo(reset, "reset")
	reset.(*net.TCPConn).SetLinger(0) // its close sends RST
	reset.Close()
	idle := dial()
	echo(idle, "idle")
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the idle connection read %v, want EOF once the idle timeout closed it", err)
	}
	idle.Close()
	got := make(chan []byte, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := g.DialAddress(ctx, "tcp", addr, firstRead{got: got}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("dialed"), nil)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the dialed channel read no echo")
	}
	d.Close()
	<-d.Closed()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := g.Recording().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	run := realRun{recording: b.Bytes()}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range dumps {
		run.dumps = append(run.dumps, d.Bytes())
	}
	return run
}

// replayFile writes a recording to a file and runs fsmgen replay on it with
// the kernel's tables.
func replayFile(t *testing.T, name string, rec []byte, flags ...string) (code int, stdout, stderr string, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args := append(append([]string{"replay"}, flags...), path)
	code = run(append(args, kernelSpecs(t)...), &out, &errOut)
	return code, out.String(), errOut.String(), path
}

// counts returns the step lines and the instance lines of a recording.
func counts(rec []byte) (steps, instances int) {
	for _, l := range strings.Split(string(rec), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if _, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			steps++
		}
		if f[0] == "new" || f[0] == "old" {
			instances++
		}
	}
	return steps, instances
}

// TestReplayRealRun: what the runtime recorded serving real connections
// (echoes, a reset, an idle timeout, a dial) is a legal path of the kernel's
// tables, and so is each dump DumpOn wrote as a channel failed.
func TestReplayRealRun(t *testing.T) {
	run := recordRun(t, 1<<14)
	for _, want := range []string{"timerFired(idle)", "(reset)", "origin=dialed", "listener", "connectCalled(", "\nend\n"} {
		if !bytes.Contains(run.recording, []byte(want)) {
			t.Errorf("the recording holds no %q:\n%s", want, run.recording)
		}
	}
	code, stdout, stderr, _ := replayFile(t, "run.txt", run.recording)
	steps, instances := counts(run.recording)
	if want := fmt.Sprintf("legal: %d steps of %d instances, machines channel, eventloop, listener\n", steps, instances); code != 0 || stdout != want || stderr != "" {
		t.Fatalf("replay: exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, want)
	}
	if len(run.dumps) < 2 { // more if a slow machine let another channel idle out
		t.Fatalf("%d dumps, want 2: the reset and the idle timeout", len(run.dumps))
	}
	for i, d := range run.dumps {
		code, stdout, stderr, _ := replayFile(t, fmt.Sprintf("dump%d.txt", i), d)
		if code != 0 || !strings.HasPrefix(stdout, "legal: ") || stderr != "" {
			t.Errorf("replay of dump %d: exit %d, stdout %q, stderr %q", i, code, stdout, stderr)
		}
	}
}

// lineOf returns the index of the first line that re matches, failing the
// test when none does.
func lineOf(t *testing.T, lines []string, re string) (int, []string) {
	t.Helper()
	r := regexp.MustCompile(re)
	for i, l := range lines {
		if m := r.FindStringSubmatch(l); m != nil {
			return i, m
		}
	}
	t.Fatalf("no line matches %s", re)
	return 0, nil
}

// loopOf returns the id of the loop whose part line i is in.
func loopOf(lines []string, i int) string {
	for ; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "loop ") {
			return strings.Fields(lines[i])[1]
		}
	}
	return "?"
}

// TestReplayTampered: a recording changed by hand is not a legal path, and
// replay names its first illegal line: file and line, the step, the
// instance, its state and variables, the event, what the table answers and
// what the recording says.
func TestReplayTampered(t *testing.T) {
	run := recordRun(t, 1<<14)
	vars := `\((?:[a-zA-Z]+=[^ )]+ ?)+\)`
	row := `\([^ ]*spec/channel\.yaml:\d+\)`
	for _, c := range []struct {
		name string
		// tamper changes lines; it returns the line number (1-based) replay
		// must name and the pattern of the rest of its message.
		tamper func(t *testing.T, lines []string) ([]string, int, string)
	}{
		{"swapped action", func(t *testing.T, lines []string) ([]string, int, string) {
			i, m := lineOf(t, lines, `^(\d+) channel (\d+) reading read\(dataShort\) -> active \[deliverRead readComplete rearmRead\]$`)
			lines[i] = strings.Replace(lines[i], "deliverRead readComplete", "readComplete deliverRead", 1)
			return lines, i + 1, fmt.Sprintf(`step %s: channel %s in state reading %s: event read\(dataShort\): the table answers -> active \[deliverRead readComplete rearmRead\] %s, the recording says -> active \[readComplete deliverRead rearmRead\]`, m[1], m[2], vars, row)
		}},
		{"wrong target state", func(t *testing.T, lines []string) ([]string, int, string) {
			i, m := lineOf(t, lines, `^(\d+) channel (\d+) active wrote\(drained\) -> active \[completeWrites\]$`)
			lines[i] = strings.Replace(lines[i], "-> active", "-> reading", 1)
			return lines, i + 1, fmt.Sprintf(`step %s: channel %s in state active %s: event wrote\(drained\): the table answers -> active \[completeWrites\] %s, the recording says -> reading \[completeWrites\]`, m[1], m[2], vars, row)
		}},
		{"removed line", func(t *testing.T, lines []string) ([]string, int, string) {
			i, m := lineOf(t, lines, `^(\d+) channel \d+ active readable -> reading \[readSocket\]$`)
			seq, _ := strconv.Atoi(m[1])
			return append(lines[:i:i], lines[i+1:]...), i + 1, fmt.Sprintf(`step %d: the recording skips from step %d to %d of loop %s: steps are missing`, seq+1, seq-1, seq+1, loopOf(lines, i))
		}},
		{"an event the table rejects", func(t *testing.T, lines []string) ([]string, int, string) {
			i, m := lineOf(t, lines, `^(\d+) channel (\d+) active readable -> reading \[readSocket\]$`)
			lines[i] = strings.Replace(lines[i], " readable ", " read(data) ", 1)
			return lines, i + 1, fmt.Sprintf(`step %s: channel %s in state active %s: event read\(data\): the table answers rejected: read results follow readSocket, which only a read cycle issues %s, the recording says -> reading \[readSocket\]`, m[1], m[2], vars, row)
		}},
		{"a rejection the table does not make", func(t *testing.T, lines []string) ([]string, int, string) {
			i, m := lineOf(t, lines, `^(\d+) channel (\d+) active writeQueued\(withinHigh\) -> active \[writeSocket\]$`)
			lines[i] = strings.Replace(lines[i], "-> active [writeSocket]", "rejected", 1)
			return lines, i + 1, fmt.Sprintf(`step %s: channel %s in state active %s: event writeQueued\(withinHigh\): the table answers -> active \[writeSocket\] %s, the recording says rejected`, m[1], m[2], vars, row)
		}},
		{"a step from another state", func(t *testing.T, lines []string) ([]string, int, string) {
			i, m := lineOf(t, lines, `^(\d+) channel (\d+) active writeQueued\(withinHigh\) -> active \[writeSocket\]$`)
			lines[i] = strings.Replace(lines[i], " active writeQueued", " reading writeQueued", 1)
			return lines, i + 1, fmt.Sprintf(`step %s: channel %s is in state active after its step \d+ \(line \d+\), the recording says it is in reading`, m[1], m[2])
		}},
		{"wrong version", func(t *testing.T, lines []string) ([]string, int, string) {
			lines[0] = "fsmkernel-recording v2"
			return lines, 1, `a recording of format v2: this fsmgen reads v1`
		}},
		{"not a recording", func(t *testing.T, lines []string) ([]string, int, string) {
			lines[0] = "hello"
			return lines, 1, `not an fsmkernel recording: the first line is "hello", not "fsmkernel-recording v1"`
		}},
		{"an option left out", func(t *testing.T, lines []string) ([]string, int, string) {
			i, m := lineOf(t, lines, `^new (channel \d+) .* panicPolicy=contain$`)
			lines[i] = strings.TrimSuffix(lines[i], " panicPolicy=contain")
			return lines, i + 1, fmt.Sprintf(`new %s: the recording does not give option panicPolicy`, m[1])
		}},
		{"cut short", func(t *testing.T, lines []string) ([]string, int, string) {
			n := len(lines) - 1 // without its end line
			return lines[:n], n + 1, `the recording ends without its end line: it is cut short`
		}},
		{"a loop's last step removed", func(t *testing.T, lines []string) ([]string, int, string) {
			i, _ := lineOf(t, lines, `^loop 1 `)
			j, m := lineOf(t, lines, `^loop 0 capacity \d+ first 1 last (\d+)$`)
			last, _ := strconv.Atoi(m[1])
			return append(lines[:i-1:i-1], lines[i:]...), i, fmt.Sprintf(`loop 0: its steps end at %d, its loop line \(line %d\) says they end at %d: steps are missing`, last-1, j+1, last)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := strings.Split(strings.TrimSuffix(string(run.recording), "\n"), "\n")
			tampered, line, msg := c.tamper(t, lines)
			code, stdout, stderr, path := replayFile(t, "tampered.txt", []byte(strings.Join(tampered, "\n")+"\n"))
			want := "^" + regexp.QuoteMeta(fmt.Sprintf("%s:%d: ", path, line)) + msg + "\n$"
			if code != 1 || stdout != "" || !regexp.MustCompile(want).MatchString(stderr) {
				t.Errorf("replay: exit %d, stdout %q, stderr\n%s\nwant exit 1 and stderr matching\n%s", code, stdout, stderr, want)
			}
		})
	}
}

// TestReplayWrapped: a ring that wrapped keeps the run's last steps; the
// instances that began before them are old, replayed from every reachable
// configuration of their first recorded state. The recording is legal, and
// the notes say what that rests on; a swapped action in it is still found.
func TestReplayWrapped(t *testing.T) {
	run := recordRun(t, 32)
	if !bytes.Contains(run.recording, []byte(" wrapped\n")) || !bytes.Contains(run.recording, []byte("\nold ")) {
		t.Fatalf("the ring did not wrap or no instance is old:\n%s", run.recording)
	}
	code, stdout, stderr, _ := replayFile(t, "wrapped.txt", run.recording)
	steps, instances := counts(run.recording)
	if !strings.HasPrefix(stdout, fmt.Sprintf("legal: %d steps of %d instances, machines ", steps, instances)) || code != 0 || stderr != "" {
		t.Fatalf("replay: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !regexp.MustCompile(`(?m)^note: loop \d: the ring wrapped: its steps 1-\d+ were overwritten; \d+ instances that began before step \d+ \(old\) were replayed from every reachable configuration`).MatchString(stdout) {
		t.Errorf("no note of the wrapped ring:\n%s", stdout)
	}
	lines := strings.Split(string(run.recording), "\n")
	for i, l := range lines {
		if m := regexp.MustCompile(`^(\d+) (\w+ \d+) \w+ \S+ -> \w+ \[(\w+) (\w+)(.*)\]$`).FindStringSubmatch(l); m != nil {
			lines[i] = fmt.Sprintf("%s %s", l[:strings.Index(l, "[")], "["+m[4]+" "+m[3]+m[5]+"]")
			code, _, stderr, path := replayFile(t, "wrapped-tampered.txt", []byte(strings.Join(lines, "\n")))
			want := fmt.Sprintf("%s:%d: step %s: %s in state ", path, i+1, m[1], m[2])
			if code != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "the recording says -> ") {
				t.Errorf("replay of %q: exit %d, stderr %q; want 1 and a message starting %q", lines[i], code, stderr, want)
			}
			return
		}
	}
	t.Fatal("no step with two actions to swap")
}

// TestReplayJSON: -json prints the verdict as one object, the first illegal
// step's parts as fields.
func TestReplayJSON(t *testing.T) {
	run := recordRun(t, 1<<14)
	code, stdout, _, _ := replayFile(t, "run.txt", run.recording, "-json")
	var res replayResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || !res.Legal || res.Illegal != nil || len(res.Machines) != 3 {
		t.Fatalf("replay -json: exit %d, %+v (%v)\n%s", code, res, err, stdout)
	}
	lines := strings.Split(string(run.recording), "\n")
	i, m := lineOf(t, lines, `^(\d+) channel (\d+) active wrote\(drained\) -> active \[completeWrites\]$`)
	lines[i] = strings.Replace(lines[i], "[completeWrites]", "[]", 1)
	code, stdout, stderr, path := replayFile(t, "tampered.txt", []byte(strings.Join(lines, "\n")), "-json")
	res = replayResult{}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 1 || res.Legal || res.Illegal == nil {
		t.Fatalf("replay -json of a tampered recording: exit %d, %+v (%v)\n%s", code, res, err, stdout)
	}
	ill := res.Illegal
	seq, _ := strconv.ParseUint(m[1], 10, 64)
	id, _ := strconv.ParseUint(m[2], 10, 64)
	if ill.File != path || ill.Line != i+1 || ill.Step != seq || ill.Machine != "channel" || ill.ID != id || ill.State != "active" ||
		ill.Event != "wrote(drained)" || !strings.HasPrefix(ill.Table, "-> active [completeWrites] (") || ill.Recording != "-> active []" ||
		!strings.Contains(ill.Vars, "output=") || !strings.HasPrefix(stderr, ill.Message) {
		t.Errorf("the illegal step: %+v; stderr %q", ill, stderr)
	}
}

// TestReplayUsage: replay wants a recording and at least one spec file.
func TestReplayUsage(t *testing.T) {
	var errOut bytes.Buffer
	if code := run([]string{"replay", "rec.txt"}, &bytes.Buffer{}, &errOut); code != 2 || !strings.Contains(errOut.String(), "replay: give the recording, then the spec files") {
		t.Errorf("replay with no spec files: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	code := run(append([]string{"replay", filepath.Join(t.TempDir(), "none.txt")}, kernelSpecs(t)...), &bytes.Buffer{}, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "no such file") {
		t.Errorf("replay of a missing file: exit %d, stderr %q", code, errOut.String())
	}
}

// TestReplayOtherTables: a recording replayed on tables other than those the
// runtime was generated from is checked against those: a renamed action makes
// the first step that performs it illegal, and the fingerprints' difference is
// noted.
func TestReplayOtherTables(t *testing.T) {
	rec := recordRun(t, 1<<14).recording
	dir := t.TempDir()
	var specs []string
	for _, p := range kernelSpecs(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(p) == "channel.yaml" {
			b = regexp.MustCompile(`\brearmRead\b`).ReplaceAll(b, []byte("rearmReading"))
		}
		specs = append(specs, filepath.Join(dir, filepath.Base(p)))
		if err := os.WriteFile(specs[len(specs)-1], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "run.txt")
	if err := os.WriteFile(path, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(rec), "\n")
	i, m := lineOf(t, lines, `^(\d+) channel (\d+) (\w+) (\S+) -> (\w+) \[(.*\brearmRead\b.*)\]$`)
	var out, errOut bytes.Buffer
	code := run(append([]string{"replay", path}, specs...), &out, &errOut)
	want := fmt.Sprintf("^note: machine channel: the tables' states, events or actions are not the ones the recording was made with \\(fingerprint [0-9a-f]{16}, the recording's [0-9a-f]{16}\\); steps are matched by name\n%s:%d: step %s: channel %s in state %s \\(.*\\): event %s: the table answers -> %s \\[%s\\] \\(.*\\), the recording says -> %s \\[%s\\]\n$",
		regexp.QuoteMeta(path), i+1, m[1], m[2], m[3], regexp.QuoteMeta(m[4]), m[5], strings.ReplaceAll(m[6], "rearmRead", "rearmReading"), m[5], m[6])
	if code != 1 || out.Len() != 0 || !regexp.MustCompile(want).MatchString(errOut.String()) {
		t.Errorf("replay on renamed tables: exit %d, stdout %q, stderr\n%s\nwant matching\n%s", code, out.String(), errOut.String(), want)
	}
}
