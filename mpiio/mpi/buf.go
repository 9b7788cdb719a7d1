//go:build cgo

package mpi

// #include "shim.h"
import "C"

import (
	"math"
	"unsafe"
)

// elem is the element types the package passes to MPI, with their datatypes.
type elem interface{ byte | int64 | float64 }

// dtypeOf returns the shim datatype code and size of T.
func dtypeOf[T elem]() (C.int, int) {
	var z T
	switch any(z).(type) {
	case int64:
		return C.CK_INT64, 8
	case float64:
		return C.CK_DOUBLE, 8
	default:
		return C.CK_BYTE, 1
	}
}

// ptr returns the address of s's first element, or nil for an empty slice
// (there is no &s[0] then). The memory holds no Go pointers, so passing it
// to a blocking C call is allowed by the cgo rules.
func ptr[T elem](s []T) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}

func fitsInt32(v int) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }

// cInts converts non-negative ints to a C int array; ok is false if one
// does not fit.
func cInts(v []int) (out []C.int, ok bool) {
	out = make([]C.int, len(v))
	for i, x := range v {
		if x < 0 || x > math.MaxInt32 {
			return nil, false
		}
		out[i] = C.int(x)
	}
	return out, true
}

// cptr is ptr for C int arrays.
func cptr(s []C.int) *C.int {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}
