package statemachine_test

// Behaviour scripts: each file testdata/behaviours/*.txt is one scenario over the
// generated machines, run as a subtest named after the file. The expectations are
// written by hand in the scripts (there is no -update flag): a script states what
// the kernel's behaviour requires (its opening comment names it), and the
// machines must agree.
//
// Format: one command per line; blank lines are skipped; "#" starts a comment that
// runs to the end of the line. Every name is the spec's name (events, outcomes,
// states, actions, options, variables).
//
//	new NAME MACHINE [option=value ...]
//	    Create instance NAME of MACHINE (channel, eventloop, listener) with the
//	    declared default options, changed by the given ones.
//	fire NAME event
//	fire NAME event(outcome)
//	    Deliver the event (with its outcome, for events that carry one) through the
//	    generated Fire, then check the machine's declared invariants. A rejected
//	    event is an error unless the next command is "want NAME rejected".
//	want NAME actions [action ...]
//	    The actions of NAME's last fire, exactly and in order; none after "actions"
//	    means no actions.
//	want NAME rejected
//	    NAME's last fire returned a *statemachine.RejectedError and left the state
//	    and the variables unchanged.
//	want NAME state STATE
//	want NAME var variable=value [variable=value ...]
//	    The current state; the current values of variables (options included).
//	want NAME total action=count [action=count ...]
//	    How many times each action was returned to NAME since "new" (for
//	    multiplicities: closeFD at most once, failPendingWrites once, ...).
//
// Values are written as the generated String() methods print them (enumerations),
// true/false, or decimal numbers. A failing expectation reports file:line, the whole
// step (the fire it checks and the expectation) and what was got and wanted.
//
// The runner maps names to values by reflection on the generated package: events,
// states and actions through their String() methods over 0..Count; an event's
// outcome type from the parameter of its typed method (read -> Channel.Read(out
// ReadResult)); options and variables from the exported fields of XOptions and
// XVars, whose names are the spec names with the first letter upper-cased.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/fsmkernel/fsmkernel/statemachine"
)

// machineKind describes one generated machine to the runner.
type machineKind struct {
	newFn                               func(opts reflect.Value) (reflect.Value, error)
	defaults                            reflect.Value
	eventType, stateType, actionType    reflect.Type
	eventCount, stateCount, actionCount int
	eventNames, stateNames, actionNames []string
}

func kind[M any, O any, E, S, A ~uint8](newFn func(O) (M, error), defaults O, eventCount, stateCount, actionCount int) *machineKind {
	k := &machineKind{
		newFn: func(opts reflect.Value) (reflect.Value, error) {
			m, err := newFn(opts.Interface().(O))
			p := new(M)
			*p = m
			return reflect.ValueOf(p), err
		},
		defaults:    reflect.ValueOf(defaults),
		eventType:   reflect.TypeFor[E](),
		stateType:   reflect.TypeFor[S](),
		actionType:  reflect.TypeFor[A](),
		eventCount:  eventCount,
		stateCount:  stateCount,
		actionCount: actionCount,
	}
	k.eventNames = enumNames(k.eventType, eventCount)
	k.stateNames = enumNames(k.stateType, stateCount)
	k.actionNames = enumNames(k.actionType, actionCount)
	return k
}

var machineKinds = map[string]*machineKind{
	"channel": kind[statemachine.Channel, statemachine.ChannelOptions, statemachine.ChannelEvent, statemachine.ChannelState, statemachine.ChannelAction](
		statemachine.NewChannel, statemachine.DefaultChannelOptions(),
		statemachine.ChannelEventCount, statemachine.ChannelStateCount, statemachine.ChannelActionCount),
	"eventloop": kind[statemachine.Eventloop, statemachine.EventloopOptions, statemachine.EventloopEvent, statemachine.EventloopState, statemachine.EventloopAction](
		statemachine.NewEventloop, statemachine.DefaultEventloopOptions(),
		statemachine.EventloopEventCount, statemachine.EventloopStateCount, statemachine.EventloopActionCount),
	"listener": kind[statemachine.Listener, statemachine.ListenerOptions, statemachine.ListenerEvent, statemachine.ListenerState, statemachine.ListenerAction](
		statemachine.NewListener, statemachine.DefaultListenerOptions(),
		statemachine.ListenerEventCount, statemachine.ListenerStateCount, statemachine.ListenerActionCount),
}

// enumNames returns the String() of the values 0..count-1 of a uint8 enumeration;
// with count < 0 it stops at the first value printed in the "Type(n)" fallback form.
func enumNames(t reflect.Type, count int) []string {
	var names []string
	for i := 0; i < 256 && (count < 0 || i < count); i++ {
		v := reflect.New(t).Elem()
		v.SetUint(uint64(i))
		s := v.Interface().(fmt.Stringer).String()
		if count < 0 && strings.HasPrefix(s, t.Name()+"(") {
			break
		}
		names = append(names, s)
	}
	return names
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var stringerType = reflect.TypeFor[fmt.Stringer]()

// parseValue parses a script value into a value of type t (bool, an enumeration
// with String, or a plain unsigned or signed integer).
func parseValue(t reflect.Type, s string) (reflect.Value, error) {
	v := reflect.New(t).Elem()
	switch {
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return v, fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case t.Implements(stringerType) && t.Kind() == reflect.Uint8:
		names := enumNames(t, -1)
		i := indexOf(names, s)
		if i < 0 {
			return v, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
		}
		v.SetUint(uint64(i))
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v.OverflowUint(n) {
			return v, fmt.Errorf("%q is not a %s", s, t)
		}
		v.SetUint(n)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(n) {
			return v, fmt.Errorf("%q is not a %s", s, t)
		}
		v.SetInt(n)
	default:
		return v, fmt.Errorf("unsupported type %s", t)
	}
	return v, nil
}

func formatValue(v reflect.Value) string {
	if v.Type().Implements(stringerType) {
		return v.Interface().(fmt.Stringer).String()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	}
	return fmt.Sprint(v.Interface())
}

// step is the result of one fire.
type step struct {
	line        int
	text        string
	actions     []string
	err         error
	stateBefore string
	varsBefore  string
}

// instance is one machine of a script.
type instance struct {
	kind   *machineKind
	m      reflect.Value // pointer to the machine
	totals map[string]int
	last   *step
}

func (in *instance) state() string {
	return in.m.MethodByName("State").Call(nil)[0].Interface().(fmt.Stringer).String()
}

func (in *instance) vars() reflect.Value {
	return in.m.MethodByName("Vars").Call(nil)[0]
}

func (in *instance) varsString() string {
	v := in.vars()
	var b strings.Builder
	for i := 0; i < v.NumField(); i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		f := v.Type().Field(i).Name
		b.WriteString(strings.ToLower(f[:1]) + f[1:] + "=" + formatValue(v.Field(i)))
	}
	return b.String()
}

// fire delivers event (with outcome, "" for none) through the generated Fire.
func (in *instance) fire(event, outcome string) (actions []string, err error, parseErr error) {
	ev := indexOf(in.kind.eventNames, event)
	if ev < 0 {
		return nil, nil, fmt.Errorf("unknown event %q (events: %s)", event, strings.Join(in.kind.eventNames, ", "))
	}
	method := in.m.MethodByName(upperFirst(event))
	if !method.IsValid() {
		return nil, nil, fmt.Errorf("event %q has no method %s", event, upperFirst(event))
	}
	out := 0
	switch mt := method.Type(); {
	case mt.NumIn() == 0 && outcome != "":
		return nil, nil, fmt.Errorf("event %q carries no outcome, got %q", event, outcome)
	case mt.NumIn() == 1 && outcome == "":
		names := enumNames(mt.In(0), -1)
		return nil, nil, fmt.Errorf("event %q needs an outcome: %s(%s)", event, event, strings.Join(names, "|"))
	case mt.NumIn() == 1:
		names := enumNames(mt.In(0), -1)
		out = indexOf(names, outcome)
		if out < 0 {
			return nil, nil, fmt.Errorf("event %q: unknown outcome %q (outcomes: %s)", event, outcome, strings.Join(names, ", "))
		}
	}
	evVal := reflect.New(in.kind.eventType).Elem()
	evVal.SetUint(uint64(ev))
	res := in.m.MethodByName("Fire").Call([]reflect.Value{evVal, reflect.ValueOf(uint8(out))})
	if e := res[1].Interface(); e != nil {
		return nil, e.(error), nil
	}
	acts := res[0]
	n := int(acts.MethodByName("Len").Call(nil)[0].Int())
	for i := 0; i < n; i++ {
		a := acts.MethodByName("At").Call([]reflect.Value{reflect.ValueOf(i)})[0]
		name := a.Interface().(fmt.Stringer).String()
		actions = append(actions, name)
		in.totals[name]++
	}
	return actions, nil, nil
}

func (in *instance) checkInvariants() error {
	if e := in.m.MethodByName("CheckInvariants").Call(nil)[0].Interface(); e != nil {
		return e.(error)
	}
	return nil
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, " ")
}

// splitEvent splits "event(outcome)" into its parts.
func splitEvent(s string) (event, outcome string, err error) {
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return s, "", nil
	}
	if !strings.HasSuffix(s, ")") || open == 0 || open == len(s)-2 {
		return "", "", fmt.Errorf("malformed event %q: want event or event(outcome)", s)
	}
	return s[:open], s[open+1 : len(s)-1], nil
}

// runScript runs one script and returns every failure, each naming file:line.
// It stops at the first error that makes the rest meaningless (a syntax error, an
// unknown name, an unexpected rejection); failing expectations are all reported.
func runScript(file, src string) []error {
	var errs []error
	instances := map[string]*instance{}
	var pending *step // a rejected fire that the next command must expect
	var pendingName string

	failf := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
	}

	lines := strings.Split(src, "\n")
	for i, raw := range lines {
		lineNo := i + 1
		text := raw
		if j := strings.IndexByte(text, '#'); j >= 0 {
			text = text[:j]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		text = strings.Join(fields, " ")

		if pending != nil {
			if !(len(fields) == 3 && fields[0] == "want" && fields[1] == pendingName && fields[2] == "rejected") {
				failf(pending.line, "%s\n    unexpected error: %v\n    (expect it with \"want %s rejected\" on the next line)", pending.text, pending.err, pendingName)
				return errs
			}
			pending = nil
		}

		switch fields[0] {
		case "new":
			if len(fields) < 3 {
				failf(lineNo, "%s: want: new NAME MACHINE [option=value ...]", text)
				return errs
			}
			name, machine := fields[1], fields[2]
			if _, dup := instances[name]; dup {
				failf(lineNo, "%s: instance %q already exists", text, name)
				return errs
			}
			k, ok := machineKinds[machine]
			if !ok {
				failf(lineNo, "%s: unknown machine %q (channel, eventloop, listener)", text, machine)
				return errs
			}
			opts := reflect.New(k.defaults.Type()).Elem()
			opts.Set(k.defaults)
			for _, kv := range fields[3:] {
				key, val, ok := strings.Cut(kv, "=")
				if !ok {
					failf(lineNo, "%s: option %q: want option=value", text, kv)
					return errs
				}
				f := opts.FieldByName(upperFirst(key))
				if !f.IsValid() {
					failf(lineNo, "%s: machine %s has no option %q", text, machine, key)
					return errs
				}
				v, err := parseValue(f.Type(), val)
				if err != nil {
					failf(lineNo, "%s: option %s: %v", text, key, err)
					return errs
				}
				f.Set(v)
			}
			m, err := k.newFn(opts)
			if err != nil {
				failf(lineNo, "%s: %v", text, err)
				return errs
			}
			instances[name] = &instance{kind: k, m: m, totals: map[string]int{}}

		case "fire":
			if len(fields) != 3 {
				failf(lineNo, "%s: want: fire NAME event[(outcome)]", text)
				return errs
			}
			in, ok := instances[fields[1]]
			if !ok {
				failf(lineNo, "%s: no instance %q", text, fields[1])
				return errs
			}
			event, outcome, err := splitEvent(fields[2])
			if err != nil {
				failf(lineNo, "%s: %v", text, err)
				return errs
			}
			st := &step{line: lineNo, text: text, stateBefore: in.state(), varsBefore: in.varsString()}
			acts, fireErr, parseErr := in.fire(event, outcome)
			if parseErr != nil {
				failf(lineNo, "%s: %v", text, parseErr)
				return errs
			}
			st.actions, st.err = acts, fireErr
			in.last = st
			if fireErr != nil {
				pending, pendingName = st, fields[1]
				continue
			}
			if err := in.checkInvariants(); err != nil {
				failf(lineNo, "%s\n    invariant violated: %v\n    state: %s\n    vars:  %s", text, err, in.state(), in.varsString())
			}

		case "want":
			if len(fields) < 3 {
				failf(lineNo, "%s: want: want NAME actions|rejected|state|var|total ...", text)
				return errs
			}
			in, ok := instances[fields[1]]
			if !ok {
				failf(lineNo, "%s: no instance %q", text, fields[1])
				return errs
			}
			stepText := func() string {
				if in.last == nil {
					return "(no fire yet)"
				}
				return fmt.Sprintf("line %d: %s", in.last.line, in.last.text)
			}
			args := fields[3:]
			switch fields[2] {
			case "actions":
				if in.last == nil {
					failf(lineNo, "%s: %s has not fired yet", text, fields[1])
					return errs
				}
				for _, a := range args {
					if indexOf(in.kind.actionNames, a) < 0 {
						failf(lineNo, "%s: unknown action %q (actions: %s)", text, a, strings.Join(in.kind.actionNames, ", "))
						return errs
					}
				}
				if in.last.err != nil {
					failf(lineNo, "%s\n    step: %s\n    got:  error %v\n    want: %s", text, stepText(), in.last.err, listOrNone(args))
				} else if listOrNone(in.last.actions) != listOrNone(args) {
					failf(lineNo, "%s\n    step: %s\n    got:  %s\n    want: %s", text, stepText(), listOrNone(in.last.actions), listOrNone(args))
				}
			case "rejected":
				if len(args) != 0 {
					failf(lineNo, "%s: want: want NAME rejected", text)
					return errs
				}
				var rej *statemachine.RejectedError
				switch {
				case in.last == nil:
					failf(lineNo, "%s: %s has not fired yet", text, fields[1])
					return errs
				case in.last.err == nil:
					failf(lineNo, "%s\n    step: %s\n    got:  actions %s\n    want: a *statemachine.RejectedError", text, stepText(), listOrNone(in.last.actions))
				case !errors.As(in.last.err, &rej):
					failf(lineNo, "%s\n    step: %s\n    got:  error %v (%T)\n    want: a *statemachine.RejectedError", text, stepText(), in.last.err, in.last.err)
				case in.state() != in.last.stateBefore || in.varsString() != in.last.varsBefore:
					failf(lineNo, "%s\n    step: %s\n    got:  state %s, vars %s after the rejection\n    want: state %s, vars %s (unchanged)", text, stepText(), in.state(), in.varsString(), in.last.stateBefore, in.last.varsBefore)
				}
			case "state":
				if len(args) != 1 {
					failf(lineNo, "%s: want: want NAME state STATE", text)
					return errs
				}
				if indexOf(in.kind.stateNames, args[0]) < 0 {
					failf(lineNo, "%s: unknown state %q (states: %s)", text, args[0], strings.Join(in.kind.stateNames, ", "))
					return errs
				}
				if got := in.state(); got != args[0] {
					failf(lineNo, "%s\n    step: %s\n    got:  %s\n    want: %s", text, stepText(), got, args[0])
				}
			case "var":
				if len(args) == 0 {
					failf(lineNo, "%s: want: want NAME var variable=value ...", text)
					return errs
				}
				vars := in.vars()
				for _, kv := range args {
					key, val, ok := strings.Cut(kv, "=")
					if !ok {
						failf(lineNo, "%s: %q: want variable=value", text, kv)
						return errs
					}
					f := vars.FieldByName(upperFirst(key))
					if !f.IsValid() {
						failf(lineNo, "%s: no variable %q (vars: %s)", text, key, in.varsString())
						return errs
					}
					want, err := parseValue(f.Type(), val)
					if err != nil {
						failf(lineNo, "%s: variable %s: %v", text, key, err)
						return errs
					}
					if got := formatValue(f); got != formatValue(want) {
						failf(lineNo, "%s\n    step: %s\n    got:  %s=%s\n    want: %s=%s", text, stepText(), key, got, key, formatValue(want))
					}
				}
			case "total":
				if len(args) == 0 {
					failf(lineNo, "%s: want: want NAME total action=count ...", text)
					return errs
				}
				for _, kv := range args {
					a, val, ok := strings.Cut(kv, "=")
					n, err := strconv.Atoi(val)
					if !ok || err != nil || n < 0 {
						failf(lineNo, "%s: %q: want action=count", text, kv)
						return errs
					}
					if indexOf(in.kind.actionNames, a) < 0 {
						failf(lineNo, "%s: unknown action %q (actions: %s)", text, a, strings.Join(in.kind.actionNames, ", "))
						return errs
					}
					if got := in.totals[a]; got != n {
						failf(lineNo, "%s\n    step: %s\n    got:  %s=%d\n    want: %s=%d", text, stepText(), a, got, a, n)
					}
				}
			default:
				failf(lineNo, "%s: unknown expectation %q (actions, rejected, state, var, total)", text, fields[2])
				return errs
			}

		default:
			failf(lineNo, "%s: unknown command %q (new, fire, want)", text, fields[0])
			return errs
		}
	}
	if pending != nil {
		failf(pending.line, "%s\n    unexpected error: %v\n    (expect it with \"want %s rejected\" on the next line)", pending.text, pending.err, pendingName)
	}
	return errs
}

// TestBehaviourScripts runs every scenario in testdata/behaviours.
func TestBehaviourScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "behaviours", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/behaviours")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(src), "# ") {
				t.Errorf("%s: a scenario starts with a comment naming the behaviour it shows", file)
			}
			for _, err := range runScript(file, string(src)) {
				t.Error(err)
			}
		})
	}
}

// TestBehaviourRunner checks the runner itself: a correct script passes, and every
// kind of wrong expectation or malformed line is reported with file:line.
func TestBehaviourRunner(t *testing.T) {
	const good = `# a correct script
new ch channel origin=accepted autoRead=true
fire ch registered(ok)
want ch actions fireActive armRead startTimer
want ch state active
want ch var readArmed=true output=idle
fire ch registered(ok)
want ch rejected
fire ch readable
fire ch read(wouldBlock)
want ch actions countSpurious rearmRead
want ch total countSpurious=1 closeFD=0
new l listener
fire l backoffExpired
want l rejected
new lp eventloop
fire lp submitTask
want lp actions enqueueTask
`
	if errs := runScript("good.txt", good); len(errs) != 0 {
		t.Fatalf("a correct script failed: %v", errs)
	}

	cases := []struct {
		name, script string
		want         []string // substrings of the first error
	}{
		{"wrong actions", "new ch channel\nfire ch registered(ok)\nwant ch actions fireActive\n",
			[]string{"bad.txt:3:", "step: line 2: fire ch registered(ok)", "got:  fireActive armRead startTimer", "want: fireActive"}},
		{"actions wanted none", "new ch channel\nfire ch registered(ok)\nwant ch actions\n",
			[]string{"bad.txt:3:", "want: (none)"}},
		{"wrong state", "new ch channel\nfire ch registered(ok)\nwant ch state reading\n",
			[]string{"bad.txt:3:", "got:  active", "want: reading"}},
		{"wrong var", "new ch channel autoRead=false\nfire ch registered(ok)\nwant ch var readArmed=true\n",
			[]string{"bad.txt:3:", "got:  readArmed=false", "want: readArmed=true"}},
		{"wrong total", "new ch channel\nfire ch close\nwant ch total closeFD=2\n",
			[]string{"bad.txt:3:", "got:  closeFD=1", "want: closeFD=2"}},
		{"unexpected rejection", "new ch channel\nfire ch readable\nwant ch actions\n",
			[]string{"bad.txt:2:", "unexpected error", "rejects event readable"}},
		{"missing rejection", "new ch channel\nfire ch registered(ok)\nwant ch rejected\n",
			[]string{"bad.txt:3:", "got:  actions fireActive armRead startTimer", "RejectedError"}},
		{"rejection at end of script", "new ch channel\nfire ch readable\n",
			[]string{"bad.txt:2:", "unexpected error"}},
		{"unknown event", "new ch channel\nfire ch reed\n", []string{"bad.txt:2:", `unknown event "reed"`}},
		{"unknown outcome", "new ch channel\nfire ch registered(fine)\n", []string{"bad.txt:2:", `unknown outcome "fine"`}},
		{"missing outcome", "new ch channel\nfire ch registered\n", []string{"bad.txt:2:", "needs an outcome"}},
		{"unknown action", "new ch channel\nfire ch close\nwant ch actions closeFd\n", []string{"bad.txt:3:", `unknown action "closeFd"`}},
		{"unknown option", "new ch channel autoread=true\n", []string{"bad.txt:1:", `no option "autoread"`}},
		{"bad option value", "new ch channel origin=outbound\n", []string{"bad.txt:1:", `"outbound" is not one of accepted, dialed`}},
		{"unknown state", "new ch channel\nwant ch state open\n", []string{"bad.txt:2:", `unknown state "open"`}},
		{"unknown machine", "new ch socket\n", []string{"bad.txt:1:", `unknown machine "socket"`}},
		{"unknown command", "new ch channel\nfires ch close\n", []string{"bad.txt:2:", `unknown command "fires"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := runScript("bad.txt", c.script)
			if len(errs) == 0 {
				t.Fatalf("runner reported no error for:\n%s", c.script)
			}
			msg := errs[0].Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}
