#!/usr/bin/env bash
# httpinstructions.sh: user-space instructions per request of net/http served
# over net.Listen and over ListenConn, counted by callgrind side by side:
# independent of the machine's load, where CPU time on a shared machine varies
# by a third. At 50 connections a count repeats within 1% from run to run; at
# 500, where how requests batch depends on valgrind's one-thread-at-a-time
# scheduling, within about 8%, so compare several runs there. It counts
# only what runs in the process, not the kernel: the system calls per request
# are the other half (strace, in docs/benchmarks.md).
#
# Each server (bench/cmd/httpserver, GOMAXPROCS=1, asynchronous preemption off,
# whose signals upset callgrind) is run twice under fortio's keep-alive GETs of
# a 1 KiB body, N1 then N2 requests over the same connections; the difference
# of the two totals divided by N2-N1 cancels start-up, the handshakes and
# shutdown.
#
# Usage, from the repository root: bench/scripts/httpinstructions.sh [N1 N2 [CONNS [MODES]]]
# (defaults 4000 12000, "50 500", "plain tls"). Needs valgrind and fortio in
# bench/.tools (make bench installs it).
set -euo pipefail
n1=${1:-4000}
n2=${2:-12000}
conns=${3:-50 500}
modes=${4:-plain tls}
command -v valgrind >/dev/null || { echo "httpinstructions.sh: valgrind not found" >&2; exit 1; }
fortio=bench/.tools/fortio
[ -x "$fortio" ] || { echo "httpinstructions.sh: $fortio missing: run make bench once" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd bench && go build -o "$work/httpserver" ./cmd/httpserver)

# total LISTENER MODE CONNS REQUESTS prints the server's instruction total.
total() {
	local tag="$1.$2.$3.$4" tlsflag="" scheme=http
	if [ "$2" = tls ]; then tlsflag=-tls; scheme=https; fi
	GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 timeout -s KILL 900 valgrind --tool=callgrind \
		--callgrind-out-file="$work/cg.$tag" "$work/httpserver" -listener "$1" $tlsflag \
		>"$work/out.$tag" 2>"$work/vg.$tag" &
	local srv=$! addr=""
	for _ in $(seq 600); do
		addr=$(grep -o '127.0.0.1:[0-9]*' "$work/out.$tag" | head -1 || true)
		[ -n "$addr" ] && break
		sleep 0.1
	done
	[ -n "$addr" ] || { echo "httpinstructions.sh: $1 did not announce its address" >&2; cat "$work/vg.$tag" >&2; kill $srv; exit 1; }
	"$fortio" load -quiet -k -qps 0 -timeout 60s -c "$3" -n "$4" -json "$work/json.$tag" "$scheme://$addr/" >/dev/null 2>&1
	kill -TERM $srv
	wait $srv || true
	local ok
	ok=$(sed -n 's/.*"200": *\([0-9]*\).*/\1/p' "$work/json.$tag" | head -1)
	[ "$ok" = "$4" ] || { echo "httpinstructions.sh: $1 $2 c=$3: $ok of $4 requests succeeded" >&2; exit 1; }
	awk '/^(summary|totals):/ {print $2; exit}' "$work/cg.$tag"
}

echo "callgrind, user-space instructions per request (GET, 1 KiB body, keep-alive), from $n1 and $n2 requests"
printf '%6s %6s %12s %12s %8s\n' mode conns net fsmkernel ratio
for mode in $modes; do
	for c in $conns; do
		declare -A per
		for l in net fsmkernel; do
			a=$(total $l "$mode" "$c" "$n1")
			b=$(total $l "$mode" "$c" "$n2")
			per[$l]=$(( (b - a) / (n2 - n1) ))
		done
		awk -v m="$mode" -v c="$c" -v a="${per[net]}" -v b="${per[fsmkernel]}" \
			'BEGIN { printf "%6s %6s %12d %12d %7.3fx\n", m, c, a, b, b / a }'
		unset per
	done
done
