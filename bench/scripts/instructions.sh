#!/usr/bin/env bash
# instructions.sh: the loop's own instructions per echo, without the kernel,
# counted by callgrind (repeatable whatever the machine's load, unlike time).
# It runs loop's BenchmarkEchoRuntimeOnly (canned system call results; one op is
# one echo: four transitions of the channel's table and their actions) at two
# op counts and divides the difference of the totals by the difference of the
# counts, which cancels start-up and the benchmark's own set-up. Then it counts
# the same echo with the loop recording its transitions (Options.Record,
# BenchmarkEchoRecord/on) and prints what recording costs.
#
# Usage, from the repository root: bench/scripts/instructions.sh [N1 N2 [BENCH]]
# BENCH is the -test.bench pattern of one other benchmark of the same kind, one
# echo per op, to count alone: '^BenchmarkEchoRecord$/^off$', for instance.
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
	GODEBUG=asyncpreemptoff=1 timeout -s KILL 600 valgrind --tool=callgrind --callgrind-out-file="$work/cg.$2" \
		"$work/loop.test" -test.run '^$' -test.bench "$1" \
		-test.benchtime "${2}x" -test.count 1 -test.cpu 1 >/dev/null 2>"$work/valgrind.$2" ||
		{ cat "$work/valgrind.$2" >&2; exit 1; }
	awk '/^(summary|totals):/ {print $2; exit}' "$work/cg.$2"
}
# count BENCH prints the benchmark's totals and sets per to its instructions per echo.
count() {
	local a b
	a=$(total "$1" "$n1")
	b=$(total "$1" "$n2")
	per=$(( (b - a) / (n2 - n1) ))
	echo "${1//[\^\$]/} under callgrind: $a instructions for $n1 echoes, $b for $n2"
}
if [ -n "${3:-}" ]; then
	count "$3"
	echo "instructions per echo: $per"
	exit
fi
count '^BenchmarkEchoRuntimeOnly$'
off=$per
echo "instructions per echo: $off"
count '^BenchmarkEchoRecord$/^on$'
echo "instructions per echo with Options.Record: $per ($(( per - off )) more, $(( (per - off) * 1000 / off / 10 )).$(( (per - off) * 1000 / off % 10 ))%)"
# The same echo on a channel with IdleTimeout and WriteTimeout set: what the
# timeouts' bookkeeping adds (unset, it is the first count).
count '^BenchmarkEchoRuntimeOnlyTimeouts$'
echo "instructions per echo with IdleTimeout and WriteTimeout set: $per ($(( per - off )) more)"
