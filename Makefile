# fsmkernel. `make run` regenerates the machines from spec/ and prints the check
# report; `make test` is what CI runs.
GO    ?= go
SPECS := $(wildcard spec/*.yaml) $(wildcard spec/model/*.yaml)

.PHONY: run generate check test test-vsock lint fuzz bench verify-spin simulate mutants

run: generate check

generate:
	$(GO) generate ./statemachine ./sockets ./verify
	cd bench && $(GO) generate ./lifecycle

check:
	$(GO) run ./cmd/fsmgen check $(SPECS)

test: lint
	$(GO) test -race -count=1 ./...
	if [ -f bench/go.mod ]; then cd bench && $(GO) vet ./... && $(GO) test -count=1 -run . -bench . -benchtime 100x ./...; fi

# test-vsock runs the AF_VSOCK tests for real, in a throwaway qemu guest whose
# kernel has the vsock loopback transport the host lacks (tools/vsockvm). It
# installs qemu-system-x86 and busybox-static with apt-get when missing and
# caches Debian's kernel under .cache/vsockvm; delete that to take a newer one.
# bench/grpcbench (gRPC over vsock) builds in its own module, bench/.
test-vsock:
	$(GO) run ./tools/vsockvm ./sockets ./loop ./examples/echo ./bench/grpcbench

lint:
	@out=$$(gofmt -l . bench); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=freebsd $(GO) vet ./...
	$(GO) tool staticcheck ./...

# fuzz runs the spec parser and validator fuzzer beyond its committed corpus.
fuzz:
	$(GO) test ./gen -run '^$$' -fuzz FuzzLoad -fuzztime 60s

# bench runs the generated machines against looplab/fsm, the echo servers
# against each other, and net/http and gRPC served over ListenConn against the
# same over net.Listen, side by side, and writes docs/benchmarks.md from the output.
bench:
	mkdir -p bench/.tools
	cd bench && $(GO) test -run '^$$' -bench Fire -benchmem -count 5 . > .tools/fire.txt && cat .tools/fire.txt
	cd bench && $(GO) test -run '^$$' -bench Echo -benchmem -count 3 ./echo > .tools/allocs.txt && cat .tools/allocs.txt
	bench/scripts/instructions.sh > bench/.tools/instructions.txt && cat bench/.tools/instructions.txt
	cd bench && $(GO) run ./cmd/echobench -c 50,500 -t 10s -runs 3 -idle 10000 > .tools/echo.txt && cat .tools/echo.txt
	cd bench && $(GO) run ./cmd/floodrss -modes write,send,sendcopy -peers 100 -t 6s > .tools/flood.txt && cat .tools/flood.txt
	cd bench && $(GO) run ./cmd/httpbench -c 50,500 -modes plain,tls -runs 3 -t 10s -idle 2000 > .tools/http.txt && cat .tools/http.txt
	bench/scripts/grpc.sh 5 > bench/.tools/grpc.txt && cat bench/.tools/grpc.txt
	bench/scripts/httpinstructions.sh > bench/.tools/httpinstr.txt && cat bench/.tools/httpinstr.txt
	if command -v perf >/dev/null; then bench/scripts/profile.sh 50 8 > bench/.tools/profile.txt; \
	else echo "perf not installed (Debian package linux-perf): no profile" > bench/.tools/profile.txt; fi; cat bench/.tools/profile.txt
	{ cat bench/benchmarks-head.md; \
	  printf '\n### Transitions\n\n```\n'; cat bench/.tools/fire.txt; printf '```\n'; \
	  printf '\n### Allocations per echo\n\n```\n'; cat bench/.tools/allocs.txt; printf '```\n'; \
	  printf '\n### Instructions per echo of the runtime alone (callgrind)\n\n```\n'; cat bench/.tools/instructions.txt; printf '```\n'; \
	  printf '\n### Echo CPU and idle memory\n\n```\n'; cat bench/.tools/echo.txt; printf '```\n'; \
	  printf '\n### Memory under a flood of writes\n\n```\n'; cat bench/.tools/flood.txt; printf '```\n'; \
	  printf '\n### Where the CPU of an echo goes (perf)\n\n```\n'; cat bench/.tools/profile.txt; printf '```\n'; \
	  printf '\n### HTTP over ListenConn: CPU per request and idle memory\n\n```\n'; cat bench/.tools/http.txt; printf '```\n'; \
	  printf '\n### HTTP over ListenConn: instructions per request (callgrind)\n\n```\n'; cat bench/.tools/httpinstr.txt; printf '```\n'; \
	  printf '\n### gRPC unary over ListenConn\n\n```\n'; cat bench/.tools/grpc.txt; printf '```\n'; } > docs/benchmarks.md

# verify-spin cross-checks the tables with the SPIN model checker (installed from
# Debian's packages when missing): SPIN must store exactly the configurations
# verify/ finds and report no violation, and must find the one in a broken table.
# simulate runs the swarm's long search on the simulated kernel: SCHEDULES
# schedules from consecutive seeds from SEED, one worker per core, a progress
# line every 5 s; a failure prints the command that replays it.
SCHEDULES ?= 1000000
SEED      ?= 1
simulate:
	$(GO) test -count=1 -timeout 0 -v -run 'TestSwarmSearch$$' ./loop/looptest -sim.schedules=$(SCHEDULES) -sim.seed=$(SEED)

verify-spin:
	@command -v spin >/dev/null 2>&1 || { echo "installing spin from Debian's packages"; \
		apt-get install -y spin >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y spin >/dev/null; }; }
	$(GO) test -count=1 -v -run Spin ./verify

# mutants plants each mistake of tools/mutants (table rows, errno mappings,
# issue 12's fixes reverted) in a throwaway copy and says which judge kills it:
# the model checker, the behaviour scripts and property tests, or the
# simulator's search (up to MUTANT_SCHEDULES schedules, MUTANT_CAP at most,
# MUTANT_REPEAT searches per mutant; MUTANTS selects by name). Slow: not part
# of make test.
MUTANTS          ?= .
MUTANT_SCHEDULES ?= 20000
MUTANT_CAP       ?= 3m
MUTANT_REPEAT    ?= 1
mutants:
	$(GO) run ./tools/mutants -run '$(MUTANTS)' -schedules $(MUTANT_SCHEDULES) -cap $(MUTANT_CAP) -repeat $(MUTANT_REPEAT)
