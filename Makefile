# ckptio build, test and demo targets. See README.md.
GO       ?= go
BIN      := bin
PKGS     := ./...
# Pure-Go binaries a desktop owner runs with nothing installed.
STATIC   := ckpt-store ckpt-manager ckpt ckptrun
FUZZTIME ?= 5s

.PHONY: all build test test-short vet fuzz demo clean

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(STATIC))

vet:
	$(GO) vet $(PKGS)

test: build vet
	$(GO) test -race -timeout 15m $(PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

fuzz:
	$(GO) test ./storage/wire -run '^$$' -fuzz FuzzReadFrame -fuzztime $(FUZZTIME)
	$(GO) test ./storage/wire -run '^$$' -fuzz FuzzHandshake -fuzztime $(FUZZTIME)
	$(GO) test ./storage/manifest -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)

demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN)
