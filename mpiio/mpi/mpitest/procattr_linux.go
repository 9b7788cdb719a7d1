package mpitest

import "syscall"

// procAttr puts mpirun in a new process group and kills it if the test
// process dies first (a go test timeout), so its ranks lose their launcher
// and exit instead of lingering.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
