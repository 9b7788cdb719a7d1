# ckptio build, test and demo targets. See README.md.
GO       ?= go
BIN      := bin
# Pure-Go binaries a desktop owner runs with nothing installed (CGO_ENABLED=0).
STATIC   := ckpt-store ckpt-manager ckpt ckptrun
# MPI programs (cgo against the system OpenMPI).
MPIPROGS := examples/heat
FUZZTIME ?= 5s

.PHONY: all build build-static build-mpi mpi test vet fuzz demo clean bench-put

all: build

build: build-static build-mpi

build-static:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(STATIC))

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
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

fuzz:
	$(GO) test ./storage/wire -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME)
	$(GO) test ./storage/wire -run '^$$' -fuzz '^FuzzHandshake$$' -fuzztime $(FUZZTIME)
	$(GO) test ./storage/manifest -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s

demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN)

bench-put: build-static
	$(GO) build -o $(BIN)/ ./bench/putbench
	./$(BIN)/putbench --size $${SIZE:-1GiB}
