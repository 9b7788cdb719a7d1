package disk

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/storetest"
)

const (
	crashDirEnv    = "CKPTIO_DISK_CRASH_DIR"
	crashLayoutEnv = "CKPTIO_DISK_CRASH_LAYOUT"
)

// TestCrashChild is the process TestCrashKeepsAcknowledgedBlocks kills: it
// puts blocks from 16 goroutines (and deletes a few) and prints "put HASH"
// for each acknowledged put, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashKeepsAcknowledgedBlocks")
	}
	s, err := Open(dir, Options{Layout: Layout(os.Getenv(crashLayoutEnv)), PackSize: 1 << 20})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	var out sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			for i := 0; ; i++ {
				data, h := storetest.Block(int64(g)<<32|int64(i), 1+rng.Intn(96<<10))
				if _, err := s.Put(ctx, h, data); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				out.Lock()
				fmt.Println("put", h)
				out.Unlock()
				if i%5 != 0 {
					// Deletes make the pack layout compact while it is
					// killed. Once "deleting" is printed the block may be
					// gone after the crash; once "del" is, it must be.
					out.Lock()
					fmt.Println("deleting", h)
					out.Unlock()
					if _, err := s.Delete(ctx, []storage.Hash{h}, time.Time{}); err != nil {
						fmt.Println("error", err)
						os.Exit(1)
					}
					out.Lock()
					fmt.Println("del", h)
					out.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestCrashKeepsAcknowledgedBlocks kills a store process with SIGKILL in the
// middle of a stream of puts, reopens its directory, and checks that every
// acknowledged put reads back exactly, every acknowledged delete stays
// deleted, and no temporary file remains.
func TestCrashKeepsAcknowledgedBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			dir := t.TempDir()
			for round := 0; round < 3; round++ {
				puts, dels := crashRound(t, dir, layout, 150+100*round)
				s := openT(t, dir, Options{})
				ctx := context.Background()
				for h := range puts {
					got, err := s.Get(ctx, h)
					if err != nil || storage.Sum(got) != h {
						t.Fatalf("round %d: acknowledged block %s: %v", round, h.Short(), err)
					}
				}
				for h := range dels {
					if _, err := s.Get(ctx, h); err == nil {
						t.Fatalf("round %d: deleted block %s is back", round, h.Short())
					}
				}
				if tmp := tmpFiles(t, dir); len(tmp) > 0 {
					t.Fatalf("round %d: leftovers %v", round, tmp)
				}
				// Whatever else the crash left must be whole.
				s.mu.Lock()
				var held []storage.Hash
				for h := range s.mu.blocks {
					held = append(held, h)
				}
				s.mu.Unlock()
				for _, h := range held {
					if _, err := s.Get(ctx, h); err != nil {
						t.Fatalf("round %d: held block %s: %v", round, h.Short(), err)
					}
				}
				st, _ := s.Stat(ctx)
				t.Logf("round %d: %d puts and %d deletes acknowledged; store holds %d blocks, %d bytes",
					round, len(puts), len(dels), st.Blocks, st.Used)
				s.Close()
			}
		})
	}
}

// crashRound runs TestCrashChild on dir and kills it after acks acknowledged
// puts. It returns the acknowledged puts and deletes.
func crashRound(t *testing.T, dir string, layout Layout, acks int) (puts, dels map[storage.Hash]bool) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashLayoutEnv+"="+string(layout))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	puts, dels = map[storage.Hash]bool{}, map[storage.Hash]bool{}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		var h storage.Hash
		switch verb {
		case "put", "deleting", "del":
			if err := h.UnmarshalText([]byte(arg)); err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
		default:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q", sc.Text())
		}
		switch verb {
		case "put":
			puts[h] = true
		case "deleting":
			delete(puts, h) // no longer certain to be held
		case "del":
			dels[h] = true
		}
		if len(puts)+len(dels) >= acks && !killed {
			// Lines already printed stay acknowledged; keep reading them.
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed")
	}
	return puts, dels
}
