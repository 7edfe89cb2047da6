# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing first.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 300

.PHONY: deps build test fuzz fuzz-build run release dev format tidy bench-micro bench-routing bench-overhead chaos demo-pr clean

deps:
	@bash scripts/install-deps

build: deps
	cmake --preset ci
	cmake --build --preset ci -j $(JOBS)

# Every test, built with -Werror and run under AddressSanitizer + UndefinedBehaviorSanitizer; then
# each libFuzzer target over 10,000 inputs from a fixed seed and its seed corpus (tests/fuzz,
# clang-14), the same inputs on every run; `make fuzz` runs them with random seeds for longer.
test: build
	ctest --preset ci
	$(MAKE) --no-print-directory fuzz-build
	ctest --preset fuzz

fuzz-build: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)

# The libFuzzer targets for FUZZ_SECONDS each (default 5 min); findings in build/fuzz/tests/fuzz/work.
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --preset fuzz --timeout $$(( $(FUZZ_SECONDS) + 120 ))

release: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target llmgw ollama-sim

# The gateway in front of three local simulated Ollama nodes (config/demo.yaml).
run: release
	@bash scripts/run-demo

dev: deps
	cmake --preset dev
	cmake --build --preset dev -j $(JOBS)
	ctest --preset dev

bench-micro: deps
	cmake --preset release -DLLMGW_BUILD_BENCH=ON
	cmake --build --preset release -j $(JOBS) --target llmgw_micro_bench
	./build/release/bench/llmgw_micro_bench

# The PR workflow end to end against local fakes (fake GitHub + scripted model): summarise,
# review --dry-run and eval, no account or model needed. See docs/pr-workflow.md.
demo-pr: deps
	cmake --preset ci
	cmake --build --preset ci -j $(JOBS) --target llmgw llmgw-fakes
	BUILD_DIR=build/ci bash scripts/demo-pr

# Gateway overhead against a direct connection, streaming delay, open-stream capacity (bench/RESULTS.md).
bench-routing: release
	bash bench/run-routing.sh build/release bench/results

# llmgw against haproxy and nginx: short requests with wrk (bench/run-proxies.sh), streaming
# throughput and delay per record (bench/run-streaming.sh); then the overhead against a direct
# connection and open-stream capacity (bench/run-overhead.sh). `install-deps --bench` installs
# nginx, wrk, valgrind and strace.
bench-overhead: release
	bash scripts/install-deps --bench
	cmake --build --preset release -j $(JOBS) --target llmgw_load
	bash bench/run-proxies.sh build/release
	bash bench/run-streaming.sh build/release
	bash bench/run-overhead.sh build/release

# The gateway under faults, with real processes on loopback (docs/RELIABILITY.md "Faults"): a node
# killed, hung, breaking streams or closing after each stream; idle lulls past the nodes'
# keep-alive; descriptor exhaustion; slowloris; a body-memory flood. About 4 minutes plus a 70 s
# idle lull (CHAOS_QUICK=1: shorter runs, an 8 s lull); fails when a scenario's check does.
chaos: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target llmgw ollama-sim llmgw_load
	bash bench/chaos/run.sh build/release

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

tidy:
	run-clang-tidy -p build/ci -quiet 'src/.*'

clean:
	rm -rf build
