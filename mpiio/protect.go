package mpiio

import (
	"fmt"
	"regexp"
	"unsafe"
)

var regionName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// viewOf returns the bytes of a slice of a fixed-size element type.
func viewOf[T any](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(z)))
}

// bytesOf returns the memory behind data, which must be a slice of a
// supported element type.
func bytesOf(data any) ([]byte, error) {
	switch s := data.(type) {
	case []byte:
		return s, nil
	case []int8:
		return viewOf(s), nil
	case []int16:
		return viewOf(s), nil
	case []uint16:
		return viewOf(s), nil
	case []int32:
		return viewOf(s), nil
	case []uint32:
		return viewOf(s), nil
	case []int64:
		return viewOf(s), nil
	case []uint64:
		return viewOf(s), nil
	case []int:
		return viewOf(s), nil
	case []uint:
		return viewOf(s), nil
	case []float32:
		return viewOf(s), nil
	case []float64:
		return viewOf(s), nil
	case []complex64:
		return viewOf(s), nil
	case []complex128:
		return viewOf(s), nil
	default:
		return nil, fmt.Errorf("type %T is not supported: protect a slice of a fixed-size number type ([]float64, []int64, []byte, ...), or use a stream for other state", data)
	}
}
