//go:build unix && !linux

package mpitest

import "syscall"

// procAttr puts mpirun in a new process group.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
