#!/usr/bin/env bash
# instructions.sh: the loop's own instructions per echo, without the kernel,
# counted by callgrind (repeatable whatever the machine's load, unlike time).
# It runs loop's BenchmarkEchoRuntimeOnly (canned system call results; one op is
# one echo: four transitions of the channel's table and their actions) at two
# op counts and divides the difference of the totals by the difference of the
# counts, which cancels start-up and the benchmark's own set-up.
#
# Usage, from the repository root: bench/scripts/instructions.sh [N1 N2]
set -euo pipefail
n1=${1:-100000}
n2=${2:-300000}
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind not found" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/loop.test" ./loop
total() { # ops [benchmark]
	# Asynchronous preemption signals upset callgrind; the count does not need
	# them. One P, as the echo servers run: with two, the runtime's spinning
	# threads can livelock under valgrind, which runs one thread at a time.
	GODEBUG=asyncpreemptoff=1 timeout -s KILL 600 valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" \
		"$work/loop.test" -test.run '^$' -test.bench "^${2:-BenchmarkEchoRuntimeOnly}\$" \
		-test.benchtime "${1}x" -test.count 1 -test.cpu 1 >/dev/null 2>"$work/valgrind.$1" ||
		{ cat "$work/valgrind.$1" >&2; exit 1; }
	awk '/^(summary|totals):/ {print $2; exit}' "$work/cg.$1"
}
a=$(total "$n1")
b=$(total "$n2")
echo "BenchmarkEchoRuntimeOnly under callgrind: $a instructions for $n1 echoes, $b for $n2"
echo "instructions per echo: $(( (b - a) / (n2 - n1) ))"
# The same echo on a channel with IdleTimeout and WriteTimeout set: what the
# timeouts' bookkeeping adds (unset, it is the line above).
a=$(total "$n1" BenchmarkEchoRuntimeOnlyTimeouts)
b=$(total "$n2" BenchmarkEchoRuntimeOnlyTimeouts)
echo "instructions per echo with IdleTimeout and WriteTimeout set: $(( (b - a) / (n2 - n1) ))"
