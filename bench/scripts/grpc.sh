#!/usr/bin/env bash
# grpc.sh: grpcbench's BenchmarkGRPCUnary, gRPC served over net.Listen and over
# fsmkernel's ListenConn, side by side and interleaved: COUNT rounds, each
# running the two sub-benchmarks once (-test.count 1), in the order net,
# fsmkernel in odd rounds and the other way round in even ones. It prints the
# header of the first round and every Benchmark line (benchstat reads them),
# then the medians of ns/op, B/op and allocs/op and the ratios fsmkernel/net.
#
# Usage, from anywhere: bench/scripts/grpc.sh [COUNT [BENCHTIME]]   (default 5 1s)
set -euo pipefail
count=${1:-5}
benchtime=${2:-1s}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/grpcbench.test" ./grpcbench
for i in $(seq "$count"); do
	order="net fsmkernel"
	if (( i % 2 == 0 )); then order="fsmkernel net"; fi
	for sub in $order; do
		"$work/grpcbench.test" -test.run '^$' -test.bench "^BenchmarkGRPCUnary\$/^$sub\$" \
			-test.benchmem -test.count 1 -test.benchtime "$benchtime" >"$work/out" ||
			{ cat "$work/out" >&2; exit 1; }
		if [[ ! -e "$work/header" ]]; then grep -E '^(goos|goarch|pkg|cpu):' "$work/out" >"$work/header"; fi
		grep '^Benchmark' "$work/out" >>"$work/lines" || { cat "$work/out" >&2; exit 1; }
	done
done
cat "$work/header"
# Each line comes from its own run, padded to its own name: align them.
awk '{ n = $1; sub(/^[^ \t]+[ \t]+/, ""); printf "%-32s %s\n", n, $0 }' "$work/lines"
awk -v count="$count" '
	function median(a, n,    i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	{
		split($1, name, /[\/-]/); s = name[2]
		for (f = 3; f < NF; f++) {
			if ($(f+1) == "ns/op") ns[s, ++nns[s]] = $f
			if ($(f+1) == "B/op") by[s, ++nby[s]] = $f
			if ($(f+1) == "allocs/op") al[s, ++nal[s]] = $f
		}
	}
	END {
		printf "\nmedians of %d interleaved runs:\n", count
		for (k = 1; k <= 2; k++) {
			s = k == 1 ? "net" : "fsmkernel"
			delete a; for (i = 1; i <= nns[s]; i++) a[i] = ns[s, i]; mns[s] = median(a, nns[s])
			delete a; for (i = 1; i <= nby[s]; i++) a[i] = by[s, i]; mby[s] = median(a, nby[s])
			delete a; for (i = 1; i <= nal[s]; i++) a[i] = al[s, i]; mal[s] = median(a, nal[s])
			printf "  %-9s %8.0f ns/op %7.0f B/op %5.0f allocs/op\n", s, mns[s], mby[s], mal[s]
		}
		printf "  fsmkernel/net: %.2fx ns/op, %.2fx B/op, %.2fx allocs/op\n",
			mns["fsmkernel"] / mns["net"], mby["fsmkernel"] / mby["net"], mal["fsmkernel"] / mal["net"]
	}' "$work/lines"
