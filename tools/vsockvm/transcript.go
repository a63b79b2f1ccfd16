package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A transcript reads the guest's console line by line: the markers /init
// prints and the -test.v lines of the test binaries.
type transcript struct {
	ready   string         // the guest kernel's release, once the modules loaded
	setup   string         // a setup step that failed in the guest
	current string         // the binary running now
	exits   map[string]int // exit status by binary
	ran     map[string]int // tests that passed, failed or skipped, by binary
	done    bool           // /init reached its end

	passed, failed, skipped []string // "binary: TestName/subtest"
}

func newTranscript() *transcript { return &transcript{exits: map[string]int{}, ran: map[string]int{}} }

// testResult matches go test -v's result lines, subtests indented by four
// spaces a level: "    --- PASS: TestX/sub (0.01s)".
var testResult = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(`)

// line takes one line of the console, without its line ending.
func (t *transcript) line(s string) {
	s = strings.TrimRight(s, "\r")
	// The firmware's and the kernel's terminal escapes may precede a marker on
	// its line; the prefix is found anywhere.
	if i := strings.Index(s, markerPrefix); i >= 0 {
		t.marker(s[i+len(markerPrefix):])
		return
	}
	m := testResult.FindStringSubmatch(s)
	if m == nil {
		return
	}
	name := t.current + ": " + m[2]
	t.ran[t.current]++
	switch m[1] {
	case "PASS":
		t.passed = append(t.passed, name)
	case "FAIL":
		t.failed = append(t.failed, name)
	case "SKIP":
		t.skipped = append(t.skipped, name)
	}
}

func (t *transcript) marker(m string) {
	verb, arg, _ := strings.Cut(m, " ")
	switch verb {
	case "ready":
		t.ready = arg
	case "error":
		t.setup = arg
	case "run":
		t.current = arg
	case "exit":
		bin, status, _ := strings.Cut(arg, " ")
		n, err := strconv.Atoi(status)
		if err != nil {
			n = -1
		}
		t.exits[bin] = n
	case "done":
		t.done = true
	}
}

// verdict says whether the run proved anything: the guest set up, every
// binary reported exit status 0, no test failed or skipped (in the guest
// nothing lacks vsock, so a skip is a test that did not run), and some test
// passed.
func (t *transcript) verdict(binaries []string) error {
	var errs []error
	switch {
	case t.setup != "":
		errs = append(errs, fmt.Errorf("the guest could not set up: %s failed", t.setup))
	case t.ready == "":
		errs = append(errs, errors.New("the guest never reported its modules loaded: it did not boot, or /init did not run"))
	}
	for _, bin := range binaries {
		status, ok := t.exits[bin]
		switch {
		case !ok && t.ready != "":
			errs = append(errs, fmt.Errorf("%s: the guest never reported its exit status", bin))
		case ok && status != 0:
			errs = append(errs, fmt.Errorf("%s: exit status %d", bin, status))
		case ok && t.ran[bin] == 0:
			errs = append(errs, fmt.Errorf("%s: ran no test: does -run select none of its tests?", bin))
		}
	}
	if t.ready != "" && !t.done {
		errs = append(errs, errors.New("/init did not reach its end"))
	}
	if len(t.failed) > 0 {
		errs = append(errs, fmt.Errorf("%d tests failed: %s", len(t.failed), strings.Join(t.failed, ", ")))
	}
	if len(t.skipped) > 0 {
		errs = append(errs, fmt.Errorf("%d tests skipped in the guest, where nothing may skip: %s", len(t.skipped), strings.Join(t.skipped, ", ")))
	}
	if len(t.passed) == 0 && t.ready != "" {
		errs = append(errs, errors.New("no test passed: does -run select any vsock test?"))
	}
	return errors.Join(errs...)
}
