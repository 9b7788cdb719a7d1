// Command mpihello is the MPI program of mpitest's own tests: every rank
// checks an Allreduce and prints a line. With argument "hang" rank 0 never
// returns; with "abort N" rank 0 aborts the job with code N.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ckptio/ckptio/mpiio/mpi"
)

func main() {
	if err := mpi.Init(); err != nil {
		fmt.Fprintln(os.Stderr, "mpihello:", err)
		os.Exit(1)
	}
	w := mpi.World()
	sum := []int64{0}
	if err := w.AllreduceInt64([]int64{int64(w.Rank())}, sum, mpi.Sum); err != nil {
		fmt.Fprintln(os.Stderr, "mpihello:", err)
		w.Abort(1)
	}
	if n := int64(w.Size()); sum[0] != n*(n-1)/2 {
		fmt.Fprintf(os.Stderr, "mpihello: rank sum %d\n", sum[0])
		w.Abort(1)
	}
	fmt.Printf("hello from rank %d of %d, greeting %q\n", w.Rank(), w.Size(), os.Getenv("MPIHELLO_GREETING"))
	if len(os.Args) > 1 && w.Rank() == 0 {
		switch os.Args[1] {
		case "hang":
			for {
				time.Sleep(time.Hour)
			}
		case "abort":
			code, _ := strconv.Atoi(os.Args[2])
			w.Abort(code)
		}
	}
	if err := w.Barrier(); err != nil {
		fmt.Fprintln(os.Stderr, "mpihello:", err)
		os.Exit(1)
	}
	if err := mpi.Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, "mpihello:", err)
		os.Exit(1)
	}
}
