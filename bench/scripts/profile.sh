#!/usr/bin/env bash
# profile.sh: where an echo's CPU goes, fsmkernel beside gnet. Each server runs
# pinned to CPU 0 with GOMAXPROCS=1 under fortio's 1 KiB ping-pong on CPU 1 (as
# in echobench) while `perf record -e cpu-clock` samples it; the samples are
# turned into microseconds per echo and split into the kernel, the server's own
# code (fsmkernel's loop, statemachine and sockets packages; gnet's packages),
# the system call wrappers (x/sys/unix, syscall) and the Go runtime. Then the
# server's ten busiest user-space functions.
#
# Usage, from the repository root: bench/scripts/profile.sh [connections [seconds]]
# Needs perf (Debian's linux-perf), taskset and fortio in bench/.tools (make
# bench installs it).
set -euo pipefail
conns=${1:-50}
secs=${2:-8}
hz=2000
command -v perf >/dev/null || { echo "profile.sh: perf not found (Debian package linux-perf)" >&2; exit 1; }
fortio=bench/.tools/fortio
[ -x "$fortio" ] || { echo "profile.sh: $fortio missing: run make bench once" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd bench && go build -o "$work/fsmkernel" ./cmd/echo-fsmkernel && go build -o "$work/gnet" ./cmd/echo-gnet)

echo "perf record -e cpu-clock -F $hz on the server (CPU 0, GOMAXPROCS=1); fortio tcp ping-pong, 1024 B, $conns connections, ${secs}s (CPU 1)"
for s in fsmkernel gnet; do
	GOMAXPROCS=1 taskset -c 0 "$work/$s" -addr 127.0.0.1:0 >"$work/$s.out" 2>&1 &
	srv=$!
	for _ in $(seq 50); do grep -q addr "$work/$s.out" && break; sleep 0.1; done
	addr=$(sed -n 's/.* addr \([^ ]*\).*/\1/p' "$work/$s.out" | head -1)
	[ -n "$addr" ] || { echo "profile.sh: $s did not announce its address" >&2; kill $srv; exit 1; }
	perf record -q -e cpu-clock -F $hz -p $srv -o "$work/$s.perf" -- sleep "$secs" >/dev/null 2>&1 &
	rec=$!
	sleep 0.2
	taskset -c 1 "$fortio" load -quiet -qps 0 -c "$conns" -t "$((secs - 1))s" -payload-size 1024 \
		-json "$work/$s.json" "tcp://$addr" >/dev/null 2>&1
	wait $rec
	kill -TERM $srv
	wait $srv || true
	bytes=$(sed -n 's/.*"BytesReceived": *\([0-9]*\).*/\1/p' "$work/$s.json" | head -1)
	echoes=$((bytes / 1024))
	perf report -i "$work/$s.perf" --no-children --sort dso,sym --stdio -g none -F sample,dso,sym 2>/dev/null |
		grep -v '^#' | grep -v '^$' >"$work/$s.syms"
	echo
	echo "$s: $echoes echoes; microseconds of CPU per echo by where the samples fell"
	awk -v e="$echoes" -v hz="$hz" -v s="$s" '
		{
			n = $1; dso = $2; sym = $0; sub(/^ *[0-9]+ +[^ ]+ +\[[^]]*\] +/, "", sym)
			if (dso ~ /kernel.kallsyms/) c = "kernel"
			else if (sym ~ /^runtime\./) c = "Go runtime"
			else if (sym ~ /x\/sys\/unix|^syscall\.|internal\/runtime\/syscall/) c = "syscall wrappers"
			else if (sym ~ /fsmkernel\/loop|fsmkernel\/statemachine|fsmkernel\/sockets|fsmkernel\/bench\/echo|panjf2000/) c = s " itself"
			else c = "other"
			t[c] += n; all += n
		}
		END {
			split("kernel,syscall wrappers,Go runtime," s " itself,other", order, ",")
			for (i = 1; i <= 5; i++) printf "  %-22s %7.3f\n", order[i], t[order[i]] * 1e6 / hz / e
			printf "  %-22s %7.3f\n", "total", all * 1e6 / hz / e
		}' "$work/$s.syms"
	echo "  busiest user-space functions (samples):"
	grep -v "kernel.kallsyms" "$work/$s.syms" | sort -rn | head -10 | awk '{n=$1; $1=""; $2=""; sub(/^ +\[[^]]*\] +/, ""); printf "  %7d  %s\n", n, substr($0, 1, 100)}'
done
