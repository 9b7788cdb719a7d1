//go:build cgo && !mpich

package mpi

// #cgo pkg-config: ompi
import "C"

// Flavor names the MPI library the package was built against.
const Flavor = "openmpi"
