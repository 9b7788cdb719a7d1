package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/ckptio/ckptio/bench/internal/workload"
	"github.com/ckptio/ckptio/mpiio/mpi/mpitest"
)

// mpirun launches program on np ranks, streams its output as progress and
// decodes rank 0's RESULT line into out. The whole process group is killed
// when ctx ends or timeout passes.
func mpirun(ctx context.Context, np int, timeout time.Duration, env []string, out any, program string, args ...string) error {
	launcher := mpitest.Launcher()
	if launcher == "" {
		return errors.New("mpirun not found in PATH (Debian: apt-get install openmpi-bin libopenmpi-dev, or make mpi)")
	}
	full := mpitest.Args(program, mpitest.Options{Np: np, Args: args})
	fullEnv := append(mpitest.Env(), os.Environ()...)
	return command(ctx, timeout, append(fullEnv, env...), out, launcher, full...)
}

// command runs name with args, prints its output indented, and decodes the
// RESULT line into out (nil = none expected).
func command(ctx context.Context, timeout time.Duration, env []string, out any, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	pw.Close()
	var result string
	var tail []string
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, workload.ResultPrefix); ok {
			result = r
			continue
		}
		fmt.Println("    " + line)
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
	}
	io.Copy(io.Discard, pr)
	pr.Close()
	err = cmd.Wait()
	// Ranks that left the group are beyond reach; the group is gone on
	// success, so this only matters after a timeout.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	short := name
	if len(args) > 0 {
		short += " " + strings.Join(args[len(args)-min(len(args), 6):], " ")
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: stopped after %s (%v)", short, timeout, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%s: %w", short, err)
	}
	if out == nil {
		return nil
	}
	if result == "" {
		return fmt.Errorf("%s: printed no %sline", short, workload.ResultPrefix)
	}
	if err := json.Unmarshal([]byte(result), out); err != nil {
		return fmt.Errorf("%s: its result: %w", short, err)
	}
	return nil
}

// capture runs name and returns its standard output.
func capture(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
