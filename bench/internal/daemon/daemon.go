// Package daemon starts ckptio's daemons for the benchmarks: it runs a
// command and waits for the "listening on ADDR" line it prints.
package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

var listening = regexp.MustCompile(`listening on (\S+)`)

// StartListening starts cmd and returns the address it prints, draining
// its output afterwards. It fails when no address comes within 20 s,
// quoting what the daemon printed instead.
func StartListening(cmd *exec.Cmd) (string, error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return "", err
	}
	addr := make(chan string, 1)
	var tail strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			} else {
				mu.Lock()
				tail.WriteString(sc.Text() + "\n")
				mu.Unlock()
			}
		}
	}()
	go func() { cmd.Wait(); pw.Close() }()
	select {
	case a := <-addr:
		return a, nil
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("no 'listening on' line within 20s:\n%s", tail.String())
	}
}
