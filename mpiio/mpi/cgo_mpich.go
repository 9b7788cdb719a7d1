//go:build cgo && mpich

package mpi

// #cgo pkg-config: mpich
import "C"

// Flavor names the MPI library the package was built against.
const Flavor = "mpich"
