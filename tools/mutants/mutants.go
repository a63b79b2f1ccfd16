package main

// A mutant is a named mistake planted in a copy of the repository: exact text
// edits, each of which must match its file exactly once (else the mutant is
// stale). Table mutants edit spec/*.yaml; runtime mutants re-express, against
// today's code, the behaviour one of issue 12's fixes removed.
type mutant struct {
	Name  string
	Kind  string // dropped action, wrong target, missing arm, errno, reverted fix, ...
	Desc  string // one line: the mistake, as a reviewer would describe it
	Edits []edit
}

// edit replaces Old, which must occur exactly once in File, by New.
type edit struct {
	File     string // slash-separated, from the repository's root
	Old, New string
}

// Kinds of mutant.
const (
	kindDropped = "dropped action"
	kindTarget  = "wrong target"
	kindArm     = "missing arm"
	kindErrno   = "errno mapped wrong"
	kindRow     = "outcome in the wrong row"
	kindRevert  = "reverted fix"
)

// isTable reports whether m edits the tables (and so needs regenerating).
func (m mutant) isTable() bool {
	for _, e := range m.Edits {
		if len(e.File) > 5 && e.File[:5] == "spec/" {
			return true
		}
	}
	return false
}

var mutants = []mutant{
	// ---- the tables ----
	{
		Name: "read-ebadf-as-eintr", Kind: kindErrno,
		Desc: "read(2)'s EBADF is classified interrupted: the channel retries the read on a number that is not its own",
		Edits: []edit{{File: "spec/errno.yaml",
			Old: "ECONNRESET: reset, EBADF: descriptorInvalid}\n    default: otherError\n\n  write:",
			New: "ECONNRESET: reset, EBADF: interrupted}\n    default: otherError\n\n  write:"}},
	},
	{
		Name: "read-ebadf-as-error", Kind: kindErrno,
		Desc: "read(2)'s EBADF is an ordinary error: the channel closes the number it was told is invalid (DEL, close)",
		Edits: []edit{{File: "spec/errno.yaml",
			Old: "ECONNRESET: reset, EBADF: descriptorInvalid}\n    default: otherError\n\n  write:",
			New: "ECONNRESET: reset}\n    default: otherError\n\n  write:"}},
	},
	{
		Name: "del-enoent-as-eexist", Kind: kindErrno,
		Desc: "epoll_ctl's ENOENT is classified alreadyRegistered (EEXIST's): a DEL that says another file has the number closes it",
		Edits: []edit{{File: "spec/errno.yaml",
			Old: "ENOENT: notRegistered",
			New: "ENOENT: alreadyRegistered"}},
	},
	{
		Name: "poller-enomem-as-enoent", Kind: kindErrno,
		Desc: "epoll_ctl's ENOMEM is classified notRegistered: a DEL short of memory abandons a socket that is still ours",
		Edits: []edit{{File: "spec/errno.yaml",
			Old: "ENOMEM: exhausted\n      ENOSPC: exhausted",
			New: "ENOMEM: notRegistered\n      ENOSPC: exhausted"}},
	},
	{
		Name: "write-epipe-as-eagain", Kind: kindErrno,
		Desc: "writev's EPIPE is classified wouldBlock: a write to a peer that is gone waits for writability",
		Edits: []edit{{File: "spec/errno.yaml",
			Old: "EPIPE: brokenPipe, ECONNRESET: reset, EBADF: descriptorInvalid}",
			New: "EPIPE: wouldBlock, ECONNRESET: reset, EBADF: descriptorInvalid}"}},
	},
	{
		Name: "accept-emfile-as-aborted", Kind: kindErrno,
		Desc: "accept's EMFILE is classified aborted: the listener skips instead of throttling",
		Edits: []edit{{File: "spec/errno.yaml",
			Old: "EMFILE: exhausted\n      ENFILE: exhausted\n      ENOBUFS: exhausted\n      ENOMEM: exhausted\n      EBADF: descriptorInvalid",
			New: "EMFILE: aborted\n      ENFILE: exhausted\n      ENOBUFS: exhausted\n      ENOMEM: exhausted\n      EBADF: descriptorInvalid"}},
	},
	{
		Name: "channel-del-enomem-abandons", Kind: kindRow,
		Desc: "a channel whose DEL says ENOMEM takes the number for someone else's and abandons it (the listener's old bug, in the channel)",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "on: deregistered, outcome: [ok, alreadyRegistered, exhausted], when: closeStep == deregistering, do: [closeFD]",
			New: "on: deregistered, outcome: [ok, alreadyRegistered], when: closeStep == deregistering, do: [closeFD]",
		}, {File: "spec/channel.yaml",
			Old: "      outcome: [descriptorInvalid, notRegistered, otherError]\n      when: closeStep == deregistering && ebadfPolicy == contain",
			New: "      outcome: [descriptorInvalid, notRegistered, otherError, exhausted]\n      when: closeStep == deregistering && ebadfPolicy == contain",
		}, {File: "spec/channel.yaml",
			Old: "on: deregistered, outcome: [descriptorInvalid, notRegistered, otherError], when: closeStep == deregistering && ebadfPolicy == crash",
			New: "on: deregistered, outcome: [descriptorInvalid, notRegistered, otherError, exhausted], when: closeStep == deregistering && ebadfPolicy == crash",
		}},
	},
	{
		Name: "listener-del-enoent-closes", Kind: kindRow,
		Desc: "a listener whose DEL says ENOENT (another file has the number) closes it as if it were still its own",
		Edits: []edit{{File: "spec/listener.yaml",
			Old: "on: deregistered, outcome: [ok, alreadyRegistered, exhausted], to: closing",
			New: "on: deregistered, outcome: [ok, alreadyRegistered, exhausted, notRegistered], to: closing",
		}, {File: "spec/listener.yaml",
			Old: "on: deregistered, outcome: [descriptorInvalid, notRegistered, otherError], to: abandoned",
			New: "on: deregistered, outcome: [descriptorInvalid, otherError], to: abandoned",
		}},
	},
	{
		Name: "reset-keeps-writes", Kind: kindDropped,
		Desc: "a read that says ECONNRESET closes the channel without failing its pending writes",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "on: read, outcome: [reset, otherError], to: closing, do: [{when: delivered, do: [readComplete]}, fireError, failPendingWrites, deregister]",
			New: "on: read, outcome: [reset, otherError], to: closing, do: [{when: delivered, do: [readComplete]}, fireError, deregister]",
		}},
	},
	{
		Name: "short-read-no-readcomplete", Kind: kindDropped,
		Desc: "a short read ends the read cycle without OnReadComplete",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "outcome: dataShort, to: active, do: [deliverRead, readComplete, ",
			New: "outcome: dataShort, to: active, do: [deliverRead, ",
		}},
	},
	{
		Name: "budget-no-rearm", Kind: kindArm,
		Desc: "a read cycle that spent its budget yields without re-arming read interest",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "{when: \"!delivered || autoRead\", do: [rearmRead]}, ",
			New: "",
		}},
	},
	{
		Name: "accepted-no-armread", Kind: kindArm,
		Desc: "an accepted channel becomes active believing read interest armed, without arming it",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "when: origin == accepted, to: active, do: [fireActive, {when: (autoRead && !readPaused) || readRequested, do: [armRead], set: {readArmed: true}}, startTimer]",
			New: "when: origin == accepted, to: active, do: [fireActive, {when: (autoRead && !readPaused) || readRequested, set: {readArmed: true}}, startTimer]",
		}},
	},
	{
		Name: "lowwater-no-armread", Kind: kindArm,
		Desc: "falling below the low watermark says writable again but does not resume the reads backpressure paused",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "on: lowWatermark, when: unwritable, do: [fireWritabilityChanged, {when: backpressure && ((autoRead && !readPaused) || readRequested), do: [armRead], set: {readArmed: true}}]",
			New: "on: lowWatermark, when: unwritable, do: [fireWritabilityChanged, {when: backpressure && ((autoRead && !readPaused) || readRequested), set: {readArmed: true}}]",
		}},
	},
	{
		Name: "eof-fails-pending", Kind: kindTarget,
		Desc: "EOF without half-closure with writes pending closes at once, failing them, instead of draining (issue 12's symptom 1, in the table)",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "when: \"!halfClosure && output != idle\", to: draining, do: [{when: delivered, do: [readComplete]}, {when: readArmed, do: [disarmRead]}], set: {delivered: false, readArmed: false, readRequested: false}",
			New: "when: \"!halfClosure && output != idle\", to: closing, do: [{when: delivered, do: [readComplete]}, failPendingWrites, deregister], set: {delivered: false, readArmed: false, readRequested: false, output: idle}",
		}},
	},
	{
		Name: "drained-no-complete", Kind: kindDropped,
		Desc: "a draining channel whose last write went out closes without completing it",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "{from: draining, on: wrote, outcome: drained, when: output != idle, to: closing, do: [completeWrites, deregister]",
			New: "{from: draining, on: wrote, outcome: drained, when: output != idle, to: closing, do: [deregister]",
		}},
	},
	{
		Name: "throttle-no-backoff", Kind: kindDropped,
		Desc: "a listener out of descriptors disarms accept and never starts the backoff timer that re-arms it",
		Edits: []edit{{File: "spec/listener.yaml",
			Old: "do: [countThrottled, fireError, disarmAccept, startBackoffTimer, ",
			New: "do: [countThrottled, fireError, disarmAccept, ",
		}},
	},
	{
		Name: "adopt-panic-leaks", Kind: kindDropped,
		Desc: "a panic in Accepted is counted but the accepted descriptor is never closed",
		Edits: []edit{{File: "spec/listener.yaml",
			Old: "when: panicPolicy == contain, do: [countPanic, closeConnection]",
			New: "when: panicPolicy == contain, do: [countPanic]",
		}},
	},
	{
		Name: "drain-last-closes-early", Kind: kindTarget,
		Desc: "a draining loop stops when any channel closes, not the last one",
		Edits: []edit{{File: "spec/eventloop.yaml",
			Old: "- {from: [running, draining, stopping, failing], on: channelClosed, ignore: true, why: other channels remain}",
			New: "- {from: [running, stopping, failing], on: channelClosed, ignore: true, why: other channels remain}\n    - {from: draining, on: channelClosed, to: stopped, do: [cancelDrainTimer, failPendingTasks, closePoller, reportStopped], set: {channelsOpen: false}}",
		}},
	},

	// ---- issue 12's fixes, reverted one at a time against today's code ----
	{
		Name: "i12-1-write-via-task", Kind: kindRevert,
		Desc: "symptom 1: a Write from a callback waits for a flush task instead of being taken as the callback returns, so the EOF's close runs first and its bytes count late",
		Edits: []edit{{File: "loop/channel.go",
			Old: "\tnudge := !c.nudged && !c.inCb.Load()\n",
			New: "\tnudge := !c.nudged\n",
		}, {File: "loop/channel.go",
			Old: "\t\tif r := recover(); r != nil {\n\t\t\tc.recovered(r)\n\t\t}\n\t\tif c.inboxN.Load() != 0 {\n\t\t\tc.takeWrites()\n\t\t}\n\t}()\n\tc.inCb.Store(true)\n\tfn(c.handler)",
			New: "\t\tif r := recover(); r != nil {\n\t\t\tc.recovered(r)\n\t\t}\n\t}()\n\tc.inCb.Store(true)\n\tfn(c.handler)",
		}},
	},
	{
		Name: "i12-2-dead-handler-silences-done", Kind: kindRevert,
		Desc: "symptom 2: write completions go through the handler's boundary: once the handler panicked, no done is called",
		Edits: []edit{{File: "loop/channel.go",
			Old: "func (c *Channel) complete(done func(error), err error) {\n",
			New: "func (c *Channel) complete(done func(error), err error) {\n\tif c.handlerDead {\n\t\treturn\n\t}\n",
		}},
	},
	{
		Name: "i12-2-one-recover-for-all-dones", Kind: kindRevert,
		Desc: "symptom 2: the failed writes' dones run under one recover, so a panic in one stops the rest",
		Edits: []edit{{File: "loop/channel.go",
			Old: "\tc.out, c.queued = nil, 0\n\tfor _, w := range out {\n\t\tif w.done != nil {\n\t\t\tc.complete(w.done, err)\n\t\t}\n\t}\n",
			New: "\tc.out, c.queued = nil, 0\n\tc.complete(func(error) {\n\t\tfor _, w := range out {\n\t\t\tif w.done != nil {\n\t\t\t\tw.done(err)\n\t\t\t}\n\t\t}\n\t}, err)\n",
		}},
	},
	{
		Name: "i12-3-accept-panic-closes-listener", Kind: kindRevert,
		Desc: "symptom 3: a panic in Accepted goes through the listener's own boundary and closes the listener",
		Edits: []edit{{File: "loop/listener.go",
			Old: "\tcase err != nil:\n\t\te.out, e.cause, e.conn, e.addr = uint8(sm.AdoptResultPanicked), err, conn, addr\n",
			New: "\tcase err != nil:\n\t\te.out, e.cause, e.conn, e.addr = uint8(sm.AdoptResultPanicked), err, conn, addr\n\t\tx.handlerDead = true\n\t\tx.events.raise(lnEvent{ev: sm.ListenerEventHandlerPanicked, cause: err})\n",
		}},
	},
	{
		Name: "i12-4-shutdown-before-inbox", Kind: kindRevert,
		Desc: "symptom 4: a channel hears the graceful shutdown (and every outside event) before the writes waiting in its inbox, which then fail",
		Edits: []edit{{File: "loop/channel.go",
			Old: "\tif !c.events.busy && c.inboxN.Load() != 0 {\n\t\tc.takeWrites()\n\t}\n\tif c.loop.opts.TraceRegions {\n\t\treturn c.events.fire(e, c.tracedStep)",
			New: "\tif c.loop.opts.TraceRegions {\n\t\treturn c.events.fire(e, c.tracedStep)",
		}},
	},
	{
		Name: "i12-4-forced-shutdown-nil", Kind: kindRevert,
		Desc: "symptom 4: a Shutdown whose deadline forced the close returns nil",
		Edits: []edit{{File: "loop/loop.go",
			Old: "\treturn fmt.Errorf(\"%w: %w\", ErrForced, cause)\n",
			New: "\treturn nil\n",
		}},
	},
	{
		Name: "i12-5-del-result-ignored", Kind: kindRevert,
		Desc: "symptom 5: the channel's DEL result is ignored, so a number reused by another file is closed",
		Edits: []edit{{File: "loop/channel.go",
			Old: "\tout := sockets.ClassifyPollerControl(err)\n\tc.events.raiseResult(chEvent{ev: sm.ChannelEventDeregistered",
			New: "\tout := sockets.ClassifyPollerControl(nil)\n\tc.events.raiseResult(chEvent{ev: sm.ChannelEventDeregistered",
		}},
	},
	{
		Name: "i12-6-close-after-end-rejected", Kind: kindRevert,
		Desc: "symptom 6: Close on a channel that already ended is rejected by its table and counted in Counters.Rejected",
		Edits: []edit{{File: "spec/channel.yaml",
			Old: "    - {from: [closed, abandoned], on: \"*\", exceptOn: [writeQueued], ignore: true,",
			New: "    - {from: [closed, abandoned], on: close, reject: true}\n    - {from: [closed, abandoned], on: \"*\", exceptOn: [writeQueued, close], ignore: true,",
		}},
	},
	{
		Name: "i12-review-result-after-older-events", Kind: kindRevert,
		Desc: "review: a syscall's result is queued behind the events raised before it, so an older event may call on a number its table has not yet heard is invalid",
		Edits: []edit{{File: "loop/registry.go",
			Old: "func (q *events[E]) raiseResult(e E) {\n\tq.queue = append(q.queue, e)\n\tif i := q.next; i < len(q.queue)-1 {\n\t\t// Move it to i by hand: slices.Insert costs a generic call per result.\n\t\tcopy(q.queue[i+1:], q.queue[i:len(q.queue)-1])\n\t\tq.queue[i] = e\n\t}\n\tq.next++\n}",
			New: "func (q *events[E]) raiseResult(e E) {\n\tq.queue = append(q.queue, e)\n}",
		}},
	},
}
