# ckptio build, test and demo targets. See README.md.
GO       ?= go
BIN      := bin
# Pure-Go binaries a desktop owner runs with nothing installed (CGO_ENABLED=0).
STATIC   := ckpt-store ckpt-manager ckpt ckptrun
# MPI programs (cgo against the system OpenMPI).
MPIPROGS := examples/heat
FUZZTIME ?= 60s
# What --version prints (cmd/internal/cli): git describe when in a checkout,
# else the build information Go records.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := $(if $(VERSION),-X github.com/ckptio/ckptio/cmd/internal/cli.version=$(VERSION)) \
            $(if $(COMMIT),-X github.com/ckptio/ckptio/cmd/internal/cli.commit=$(COMMIT))

.PHONY: all build build-static build-mpi mpi test vet fuzz demo clean bench-put bench-mount

all: build

build: build-static build-mpi

build-static:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(STATIC))

build-mpi: mpi
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./,$(MPIPROGS))

# Installs OpenMPI from Debian's packages when missing (as root), or says
# what to install.
mpi:
	@./scripts/ensure-mpi.sh

vet:
	$(GO) vet ./...

test: build vet
	$(GO) test -race -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

# Every fuzz target for FUZZTIME each: 2000 inputs inside make test, 60s alone.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN)

# The fast path of 'ckpt put' for a tree (docs/benchmarks.md, "Trees").
.PHONY: bench-tree
bench-tree: build-static
	./scripts/bench-tree.sh

# ckpt-store --max-bandwidth against a store without it, in one run
# (docs/benchmarks.md, "Store bandwidth limit").
.PHONY: bench-bandwidth
bench-bandwidth: build-static
	$(GO) build -o $(BIN)/ ./bench/bwbench
	./$(BIN)/bwbench --bin $(BIN) --limit $${LIMIT:-20MiB/s} --size $${SIZE:-64MiB}

# Reed-Solomon against replicas: put, get, stored bytes, degraded reads
# (docs/benchmarks.md, "Erasure coding against replicas").
.PHONY: bench-redundancy
bench-redundancy: build-static
	$(GO) build -o $(BIN)/ ./bench/rsbench
	./$(BIN)/rsbench --bin $(BIN) --size $${SIZE:-128MiB} --scheme $${SCHEME:-rs:4+2} --replicas $${REPLICAS:-2}

bench-put: build-static
	$(GO) build -o $(BIN)/ ./bench/putbench
	./$(BIN)/putbench --size $${SIZE:-1GiB}

# The mounted file system against ckpt put and get, in one run: write,
# read back, a tenth rewritten (docs/benchmarks.md, "Mounted file
# system"). Needs /dev/fuse and root or fusermount3.
bench-mount: build-static
	$(GO) build -o $(BIN)/ ./bench/mountbench
	./$(BIN)/mountbench --size $${SIZE:-1GiB} --bin $(BIN)

# Checkpoint benchmarks: ckptio (synchronous and asynchronous) against POSIX
# N-N, MPI-IO and restic on the same workload, in one run; writes
# bench/results.json and bench/results.md (docs/benchmarks.md).
# bench-quick checkpoints 256 MiB in all (under 2 minutes), bench 4 GiB
# (TOTAL=1GiB make bench for another size).
.PHONY: bench bench-quick
BENCH_BUILD = $(GO) build -o $(BIN)/ ./bench/ckptbench ./bench/posixbench && $(GO) build -o $(BIN)/benchharness ./bench/harness

bench: build-static mpi
	$(BENCH_BUILD)
	./$(BIN)/benchharness --label bench --total $${TOTAL:-4GiB}

bench-quick: build-static mpi
	$(BENCH_BUILD)
	./$(BIN)/benchharness --label bench-quick --total 256MiB --timeout 10m

# Writes over emulated 1 Gbit/s links (stdchk's setting): the writer, the
# manager and 1-8 stores in network namespaces of their own, links shaped by
# tc; needs root and iproute2, says why and measures nothing where network
# namespaces are not permitted. Writes bench/net/results.md, results.json
# and bandwidth.png (docs/benchmarks.md). QUICK=1 for 128 MiB per run.
.PHONY: bench-net
bench-net: build-static
	$(GO) build -o $(BIN)/netbench ./bench/net
	./bench/net/run.sh

# Chaos test, long form (docs/availability.md, "Chaos test"): heat on 4 ranks
# checkpointing to 5 stores with 2 copies while stores (some wiped) and the
# manager are SIGKILLed and restarted at random; a few minutes. A short form
# runs in make test. CKPT_CHAOS_SEED=N replays a seed's schedule.
.PHONY: chaos
chaos: mpi
	CKPT_CHAOS=long $(GO) test -count=1 -v -timeout 40m -run '^TestChaos$$' ./chaos/
