//go:build linux || darwin || freebsd

package looptest

import (
	"fmt"
	"slices"
	"strings"
)

// profiles are the Profiles a test or a command selects by name.
var profiles = map[string]struct {
	p   Profile
	doc string
}{
	"quiet": {Profile{}, "no faults: a quiet Linux"},
	"linux": {Profile{EINTR: 200, EAGAIN: 500, Short: 2000, Spurious: 200},
		"what a busy Linux host answers: EINTR, EAGAIN with data there, short reads and writes, a little spurious readiness"},
	"vsock": {Profile{EAGAIN: 500, Short: 1000, Spurious: 2000, EOFHint: 1000, StaleInterest: 500, Reset: 20, EBADF: 20, Reuse: 5000, ConnsOnly: true},
		"AF_VSOCK under a hypervisor: readiness its reads do not find (EAGAIN), EOF hints with nothing to read, stale readiness, and the VM stopping: resets, and numbers invalidated behind the runtime (half of them reused at once)"},
	"exhausted": {Profile{AcceptLimit: 3000, ControlFail: 100, EINTR: 100},
		"a host out of descriptors and memory: accept and socket say EMFILE, ENFILE or ENOBUFS, poller changes ENOMEM"},
	"hostile": {Profile{EINTR: 300, EAGAIN: 500, Short: 2000, Reset: 50, EBADF: 30, Reuse: 5000, AcceptLimit: 500,
		ControlFail: 30, Spurious: 1000, EOFHint: 500, StaleInterest: 500, ConnsOnly: true},
		"every fault the simulator has at once, but those that stop a loop: EBADF takes connections only, and no wait fails"},
}

// NamedProfile returns the Profile called name (see ProfileNames), for a
// test's flag or a command line. An unknown name is an error that lists the
// known ones.
func NamedProfile(name string) (Profile, error) {
	if e, ok := profiles[name]; ok {
		return e.p, nil
	}
	return Profile{}, fmt.Errorf("looptest: no profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
}

// ProfileNames returns the names NamedProfile knows, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ProfileDoc says in one line what the profile called name simulates, or ""
// for an unknown name.
func ProfileDoc(name string) string { return profiles[name].doc }

// AtLeast returns p with each rate raised to min's where min's is higher: a
// schedule's drawn profile with a family's known faults on top. ConnsOnly
// stays p's.
func (p Profile) AtLeast(min Profile) Profile {
	raise := func(a *uint16, b uint16) { *a = max(*a, b) }
	raise(&p.EINTR, min.EINTR)
	raise(&p.EAGAIN, min.EAGAIN)
	raise(&p.Short, min.Short)
	raise(&p.Reset, min.Reset)
	raise(&p.EBADF, min.EBADF)
	raise(&p.Reuse, min.Reuse)
	raise(&p.AcceptLimit, min.AcceptLimit)
	raise(&p.ControlFail, min.ControlFail)
	raise(&p.WaitFail, min.WaitFail)
	raise(&p.Spurious, min.Spurious)
	raise(&p.EOFHint, min.EOFHint)
	raise(&p.StaleInterest, min.StaleInterest)
	return p
}
