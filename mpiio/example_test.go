package mpiio_test

import (
	"context"
	"log"

	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/mpiio/mpi"
	"github.com/ckptio/ckptio/mpiio/mpicomm"
)

// A program that checkpoints its state every 10 steps and, when relaunched
// (by ckptrun after a failure), resumes from the latest version. Run it
// under mpirun; every call is collective.
func Example() {
	if err := mpi.Init(); err != nil {
		log.Fatal(err)
	}
	defer mpi.Finalize()
	ctx := context.Background()
	cp, err := mpiio.Open(ctx, mpicomm.Wrap(mpi.World()), mpiio.Config{Job: "heat"})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Close(ctx)

	grid := make([]float64, 1<<20) // this rank's share, updated in place
	step := []int64{0}             // protected too, so a restart knows where it was
	cp.Protect("temperature", grid)
	cp.Protect("step", step)
	if _, _, err := cp.Resume(ctx); err != nil { // CKPT_RESTART_VERSION, else the latest, if any
		log.Fatal(err)
	}
	for step[0] < 100 {
		step[0]++
		// ... compute one step on grid ...
		if step[0]%10 == 0 {
			// Returns once grid and step are copied; written in the background.
			if _, err := cp.Checkpoint(ctx, mpiio.Meta{Step: step[0]}); err != nil {
				log.Fatal(err)
			}
		}
	}
	v, err := cp.Wait(ctx) // the last version, once durable
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("step %d saved as version %d", step[0], v)
}
