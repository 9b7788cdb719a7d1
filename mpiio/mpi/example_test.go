//go:build cgo

package mpi_test

import (
	"log"

	"github.com/ckptio/ckptio/mpiio/mpi"
)

// A halo exchange on a 1-D decomposition: each rank owns a row block of a
// grid with one ghost row above and below; the outer ranks talk to
// ProcNull.
func ExampleComm_SendrecvFloat64() {
	if err := mpi.Init(); err != nil {
		log.Fatal(err)
	}
	defer mpi.Finalize()
	w := mpi.World()
	const cols, rows = 64, 16
	grid := make([]float64, (rows+2)*cols) // ghost, rows owned, ghost
	row := func(i int) []float64 { return grid[i*cols : (i+1)*cols] }

	up, down := w.Rank()-1, w.Rank()+1
	if up < 0 {
		up = mpi.ProcNull
	}
	if down >= w.Size() {
		down = mpi.ProcNull
	}
	// Send the first owned row up, receive the lower ghost from below; then
	// the mirror.
	if _, err := w.SendrecvFloat64(row(1), up, 0, row(rows+1), down, 0); err != nil {
		log.Fatal(err)
	}
	if _, err := w.SendrecvFloat64(row(rows), down, 1, row(0), up, 1); err != nil {
		log.Fatal(err)
	}
}
