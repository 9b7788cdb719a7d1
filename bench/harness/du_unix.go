//go:build unix

package main

import (
	"io/fs"
	"syscall"
)

// diskBytes is the space a file takes on disk (st_blocks), else its size.
func diskBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}
