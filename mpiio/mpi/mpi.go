//go:build cgo

package mpi

// #include "shim.h"
import "C"

import (
	"math"
	"runtime"
	"sync"
)

// maxChunk is the largest count (in elements) and the largest displacement
// passed to one MPI call. Longer buffers are cut into chunks or rounds; see
// the package comment. It must be the same on every rank. Tests lower it to
// exercise the chunked paths with small data.
var maxChunk = 1 << 30

// chunkElems is how many elements of size elemSize one call may carry.
func chunkElems(elemSize int) int {
	n := min(maxChunk, math.MaxInt32) / elemSize
	return max(n, 1)
}

// The thread that initialized MPI must also finalize it, so both run on one
// locked OS thread owned by the package.
var initThread struct {
	mu   sync.Mutex
	reqs chan func()
	done chan struct{}
}

// Init initializes MPI with MPI_Init_thread(MPI_THREAD_MULTIPLE), sets
// MPI_ERRORS_RETURN on the world and self communicators and caches their
// rank and size. It fails if MPI is already initialized or if the library
// provides a lower thread level (ErrThreadLevel); in the latter case MPI
// stays initialized and the caller should still call Finalize.
//
// Goroutines may call the package from any OS thread afterwards; collective
// calls that run concurrently need a communicator each (see Comm.Dup).
func Init() error {
	initThread.mu.Lock()
	defer initThread.mu.Unlock()
	if Initialized() {
		return argError("Init", ErrArg, "MPI is already initialized")
	}
	initThread.reqs = make(chan func())
	initThread.done = make(chan struct{})
	go func() {
		// The goroutine keeps the thread locked until it returns after
		// Finalize, so the thread is never reused by other goroutines.
		runtime.LockOSThread()
		defer close(initThread.done)
		for f := range initThread.reqs {
			f()
		}
	}()
	var rc, provided C.int
	onMain(func() { rc = C.ck_init(&provided) })
	if err := codeError("Init", rc); err != nil {
		close(initThread.reqs)
		<-initThread.done
		initThread.reqs = nil
		return err
	}
	if err := world.attach(C.CK_WORLD); err != nil {
		return err
	}
	if err := self.attach(C.CK_SELF); err != nil {
		return err
	}
	if provided < C.ck_thread_multiple() {
		return argError("Init", ErrThreadLevel, "library provides thread level %d", int(provided))
	}
	return nil
}

// onMain runs f on the thread that called MPI_Init_thread.
func onMain(f func()) {
	done := make(chan struct{})
	initThread.reqs <- func() { f(); close(done) }
	<-done
}

// Finalize finalizes MPI on the thread that initialized it. Every
// communicator other than World and Self should be freed first, and no
// goroutine may be inside an MPI call.
func Finalize() error {
	initThread.mu.Lock()
	defer initThread.mu.Unlock()
	if initThread.reqs == nil || !Initialized() || Finalized() {
		return argError("Finalize", ErrArg, "MPI is not initialized by Init or already finalized")
	}
	var rc C.int
	onMain(func() { rc = C.ck_finalize() })
	close(initThread.reqs)
	<-initThread.done
	initThread.reqs = nil
	world.h, self.h = -1, -1
	return codeError("Finalize", rc)
}

// Initialized reports whether MPI has been initialized (MPI_Initialized);
// it stays true after Finalize.
func Initialized() bool {
	var flag C.int
	C.ck_initialized(&flag)
	return flag != 0
}

// Finalized reports whether MPI has been finalized (MPI_Finalized).
func Finalized() bool {
	var flag C.int
	C.ck_finalized(&flag)
	return flag != 0
}

var (
	world = &Comm{h: -1, name: "world"}
	self  = &Comm{h: -1, name: "self"}
)

// World returns MPI_COMM_WORLD. Before Init its Rank and Size are 0 and its
// calls fail with ErrComm.
func World() *Comm { return world }

// Self returns MPI_COMM_SELF.
func Self() *Comm { return self }
