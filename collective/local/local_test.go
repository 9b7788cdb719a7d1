package local

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ckptio/ckptio/collective"
)

// run is RunWith that fails the test instead of hanging.
func run(t *testing.T, n int, o Options, fn func(c collective.Comm) error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- RunWith(n, o, fn) }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%d ranks did not finish", n)
		return nil
	}
}

// eachSize runs fn as a subtest for 1..8 ranks and fails on its error.
func eachSize(t *testing.T, fn func(c collective.Comm) error) {
	for n := 1; n <= 8; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if err := run(t, n, Options{}, fn); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// block is the bytes rank r contributes: r%3 bytes of value 'a'+r.
func block(r int) []byte { return bytes.Repeat([]byte{byte('a' + r)}, r%3) }

// layout places rank i's block in reverse rank order with one byte of gap.
func layout(size int) (counts, displs []int, total int) {
	counts, displs = make([]int, size), make([]int, size)
	for i := size - 1; i >= 0; i-- {
		counts[i] = len(block(i))
		displs[i] = total
		total += counts[i] + 1
	}
	return counts, displs, total
}

func TestBarrier(t *testing.T) {
	for n := 1; n <= 8; n++ {
		var arrived atomic.Int64
		err := run(t, n, Options{}, func(c collective.Comm) error {
			for round := 1; round <= 3; round++ {
				arrived.Add(1)
				if err := c.Barrier(); err != nil {
					return err
				}
				if got := arrived.Load(); got < int64(round*n) {
					return fmt.Errorf("round %d: %d ranks arrived before the barrier ended", round, got)
				}
				if err := c.Barrier(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%d ranks: %v", n, err)
		}
	}
}

func TestBcast(t *testing.T) {
	eachSize(t, func(c collective.Comm) error {
		for root := range c.Size() {
			for _, n := range []int{0, 1, 17} {
				buf := make([]byte, n)
				if c.Rank() == root {
					for i := range buf {
						buf[i] = byte(root + i)
					}
				}
				if err := c.Bcast(buf, root); err != nil {
					return err
				}
				for i, b := range buf {
					if b != byte(root+i) {
						return fmt.Errorf("root %d, %d bytes: buf[%d] = %d", root, n, i, b)
					}
				}
			}
		}
		return nil
	})
}

func TestGatherv(t *testing.T) {
	eachSize(t, func(c collective.Comm) error {
		for root := range c.Size() {
			var counts, displs []int
			var recv []byte
			if c.Rank() == root {
				var n int
				counts, displs, n = layout(c.Size())
				recv = bytes.Repeat([]byte{'.'}, n+2) // larger than needed
			}
			send := block(c.Rank())
			if err := c.Gatherv(send, recv, counts, displs, root); err != nil {
				return err
			}
			if c.Rank() != root {
				continue
			}
			var want []byte
			for i := c.Size() - 1; i >= 0; i-- {
				want = append(append(want, block(i)...), '.')
			}
			want = append(want, "..."...)[:len(recv)]
			if !bytes.Equal(recv, want) {
				return fmt.Errorf("root %d: recv %q, want %q", root, recv, want)
			}
		}
		return nil
	})
}

func TestScatterv(t *testing.T) {
	eachSize(t, func(c collective.Comm) error {
		for root := range c.Size() {
			var counts, displs []int
			var send []byte
			if c.Rank() == root {
				var n int
				counts, displs, n = layout(c.Size())
				send = make([]byte, n)
				for i := range c.Size() {
					copy(send[displs[i]:], block(i))
				}
			}
			recv := make([]byte, len(block(c.Rank())))
			if err := c.Scatterv(send, counts, displs, recv, root); err != nil {
				return err
			}
			if want := block(c.Rank()); !bytes.Equal(recv, want) {
				return fmt.Errorf("root %d: recv %q, want %q", root, recv, want)
			}
		}
		return nil
	})
}

func TestAllreduceInt64(t *testing.T) {
	eachSize(t, func(c collective.Comm) error {
		n := int64(c.Size())
		r := int64(c.Rank())
		tests := []struct {
			op   collective.Op
			want []int64
		}{
			{collective.OpSum, []int64{n * (n - 1) / 2, n, -n * (n - 1) / 2}},
			{collective.OpMax, []int64{n - 1, 1, 0}},
			{collective.OpMin, []int64{0, 1, -(n - 1)}},
		}
		for _, tt := range tests {
			send := []int64{r, 1, -r}
			recv := make([]int64, 3)
			if err := c.AllreduceInt64(send, recv, tt.op); err != nil {
				return err
			}
			if !slices.Equal(recv, tt.want) {
				return fmt.Errorf("op %d: got %v, want %v", tt.op, recv, tt.want)
			}
			// In place and empty.
			if err := c.AllreduceInt64(send, send, tt.op); err != nil {
				return err
			}
			if !slices.Equal(send, tt.want) {
				return fmt.Errorf("op %d in place: got %v, want %v", tt.op, send, tt.want)
			}
			if err := c.AllreduceInt64(nil, []int64{}, tt.op); err != nil {
				return err
			}
		}
		return nil
	})
}

// members returns the world ranks of c's ranks in rank order, learned with
// an Allreduce on c.
func members(c collective.Comm, worldRank int) ([]int64, error) {
	send := make([]int64, c.Size())
	send[c.Rank()] = int64(worldRank)
	recv := make([]int64, c.Size())
	err := c.AllreduceInt64(send, recv, collective.OpSum)
	return recv, err
}

func TestSplit(t *testing.T) {
	eachSize(t, func(c collective.Comm) error {
		// Colors rank%3, rank 3 (mod 4) undefined; keys reverse the order.
		color := c.Rank() % 3
		if c.Rank()%4 == 3 {
			color = -1
		}
		sub, err := c.Split(color, -c.Rank())
		if err != nil {
			return err
		}
		if color < 0 {
			if sub != nil {
				return fmt.Errorf("undefined color: got %v, want nil", sub)
			}
			return nil
		}
		var want []int64
		for r := c.Size() - 1; r >= 0; r-- {
			if r%3 == color && r%4 != 3 {
				want = append(want, int64(r))
			}
		}
		got, err := members(sub, c.Rank())
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) || got[sub.Rank()] != int64(c.Rank()) {
			return fmt.Errorf("color %d: rank %d of %v, want %v", color, sub.Rank(), got, want)
		}
		// Equal keys keep the old order; a split of a split works.
		sub2, err := sub.Split(0, 0)
		if err != nil {
			return err
		}
		if got, err := members(sub2, c.Rank()); err != nil || !slices.Equal(got, want) {
			return fmt.Errorf("split of split: %v, %v, want %v", got, err, want)
		}
		return errors.Join(sub2.Free(), sub.Free())
	})
}

func TestSplitShared(t *testing.T) {
	for _, perNode := range []int{0, 1, 2, 3} {
		for n := 1; n <= 8; n++ {
			err := run(t, n, Options{RanksPerNode: perNode}, func(c collective.Comm) error {
				first, last := 0, n // world ranks on the caller's node
				if perNode > 0 {
					node := c.Rank() / perNode
					first, last = node*perNode, min(n, (node+1)*perNode)
				}
				// Split the world in two first: SplitShared goes by world rank.
				half, err := c.Split(c.Rank()%2, 0)
				if err != nil {
					return err
				}
				for _, parent := range []collective.Comm{c, half} {
					sh, err := parent.SplitShared(0)
					if err != nil {
						return err
					}
					var want []int64
					for r := first; r < last; r++ {
						if parent == c || r%2 == c.Rank()%2 {
							want = append(want, int64(r))
						}
					}
					got, err := members(sh, c.Rank())
					if err != nil {
						return err
					}
					if !slices.Equal(got, want) {
						return fmt.Errorf("node of rank %d: %v, want %v", c.Rank(), got, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("%d ranks, %d per node: %v", n, perNode, err)
			}
		}
	}
}

func TestDupConcurrent(t *testing.T) {
	eachSize(t, func(c collective.Comm) error {
		const calls = 200
		streams := []collective.Comm{c}
		for range 2 {
			d, err := c.Dup()
			if err != nil {
				return err
			}
			streams = append(streams, d)
		}
		errs := make([]error, len(streams))
		var wg sync.WaitGroup
		for s, d := range streams {
			wg.Go(func() {
				want := int64(s * d.Size())
				for i := range calls {
					recv := make([]int64, 1)
					if err := d.AllreduceInt64([]int64{int64(s)}, recv, collective.OpSum); err != nil {
						errs[s] = err
						return
					}
					if recv[0] != want {
						errs[s] = fmt.Errorf("stream %d call %d: got %d, want %d", s, i, recv[0], want)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, d := range streams[1:] {
			errs = append(errs, d.Free())
		}
		return errors.Join(errs...)
	})
}

func TestRankLeaves(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		fail func() error // what rank 2 does instead of the collective
		want error        // rank 2's error in Run
	}{
		{"error", func() error { return boom }, boom},
		{"panic", func() error { panic(boom) }, boom},
		{"return", func() error { return nil }, nil},
	}
	ops := map[string]func(c collective.Comm) error{
		"Barrier": func(c collective.Comm) error { return c.Barrier() },
		"Bcast":   func(c collective.Comm) error { return c.Bcast(make([]byte, 4), 2) },
		"Gatherv": func(c collective.Comm) error {
			return c.Gatherv(nil, nil, make([]int, c.Size()), make([]int, c.Size()), 0)
		},
		"Split": func(c collective.Comm) error { _, err := c.Split(0, 0); return err },
		"Sub": func(c collective.Comm) error {
			// Rank 2 leaves a communicator made before it failed.
			sub, err := c.Split(c.Rank()%2, 0)
			if err != nil {
				return err
			}
			if c.Rank() == 2 {
				return nil
			}
			return sub.Barrier()
		},
	}
	for _, tt := range tests {
		for name, op := range ops {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				err := run(t, 5, Options{}, func(c collective.Comm) error {
					if c.Rank() == 2 && name != "Sub" {
						return tt.fail()
					}
					if err := op(c); err != nil {
						return err
					}
					if c.Rank() == 2 {
						return tt.fail()
					}
					return c.Barrier() // rank 2 never comes to this one
				})
				if !errors.Is(err, ErrLeft) {
					t.Fatalf("got %v, want ErrLeft", err)
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), "local: rank 0: ") {
					t.Fatalf("rank 0's error is not prefixed: %v", err)
				}
			})
		}
	}
}

func TestNewLeave(t *testing.T) {
	comms := New(3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, c := range comms {
		wg.Go(func() {
			defer c.(*Comm).Leave()
			if i == 1 {
				return
			}
			errs[i] = c.Barrier()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ranks did not finish")
	}
	for _, i := range []int{0, 2} {
		var e *Error
		if !errors.As(errs[i], &e) || e.Kind != ErrLeft || e.Rank == i || e.Op != "Barrier" {
			// Rank 1 left; a rank that failed first may have left too.
			t.Errorf("rank %d: got %v, want another rank left", i, errs[i])
		}
	}
	if err := comms[0].Barrier(); !errors.Is(err, ErrClosed) {
		t.Errorf("Barrier after Leave: got %v, want ErrClosed", err)
	}
}

func TestFree(t *testing.T) {
	err := run(t, 3, Options{}, func(c collective.Comm) error {
		if err := c.Free(); !errors.Is(err, ErrArg) {
			return fmt.Errorf("Free of the world: got %v, want ErrArg", err)
		}
		d, err := c.Dup()
		if err != nil {
			return err
		}
		if c.Rank() == 0 {
			if err := d.Free(); err != nil {
				return err
			}
			if err := d.Barrier(); !errors.Is(err, ErrClosed) {
				return fmt.Errorf("Barrier after Free: got %v, want ErrClosed", err)
			}
			if err := d.Free(); !errors.Is(err, ErrClosed) {
				return fmt.Errorf("second Free: got %v, want ErrClosed", err)
			}
		} else if err := d.Barrier(); !errors.Is(err, ErrLeft) {
			return fmt.Errorf("Barrier with a freed rank: got %v, want ErrLeft", err)
		}
		return c.Barrier() // the world is unaffected
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestErrors checks that bad or mismatched arguments fail on every rank,
// and that the ranks stay matched for the next collective.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		call func(c collective.Comm) error
		want error
		rank int // rank named in the error
	}{
		{"different collectives", func(c collective.Comm) error {
			if c.Rank() == 1 {
				return c.Bcast(nil, 0)
			}
			return c.Barrier()
		}, ErrMismatch, 1},
		{"different roots", func(c collective.Comm) error { return c.Bcast(nil, c.Rank()) }, ErrMismatch, 1},
		{"root out of range", func(c collective.Comm) error { return c.Bcast(nil, 3) }, ErrArg, 0},
		{"Bcast lengths", func(c collective.Comm) error { return c.Bcast(make([]byte, 4-c.Rank()/2), 0) }, ErrTruncate, 2},
		{"Gatherv send longer than count", func(c collective.Comm) error {
			return c.Gatherv(make([]byte, 1+c.Rank()/2), make([]byte, 3), []int{1, 1, 1}, []int{0, 1, 2}, 0)
		}, ErrTruncate, 2},
		{"Gatherv send shorter than count", func(c collective.Comm) error {
			return c.Gatherv(make([]byte, 1-c.Rank()/2), make([]byte, 3), []int{1, 1, 1}, []int{0, 1, 2}, 0)
		}, ErrTruncate, 2},
		{"Gatherv recv too small", func(c collective.Comm) error {
			return c.Gatherv(make([]byte, 1), make([]byte, 2), []int{1, 1, 1}, []int{0, 1, 2}, 1)
		}, ErrTruncate, 1},
		{"Gatherv counts missing", func(c collective.Comm) error {
			return c.Gatherv(nil, nil, []int{0, 0}, []int{0, 0, 0}, 2)
		}, ErrCount, 2},
		{"Gatherv negative displ", func(c collective.Comm) error {
			return c.Gatherv(nil, nil, []int{0, 0, 0}, []int{0, -1, 0}, 0)
		}, ErrCount, 0},
		{"Scatterv send too small", func(c collective.Comm) error {
			return c.Scatterv(make([]byte, 2), []int{1, 1, 1}, []int{0, 1, 2}, make([]byte, 1), 0)
		}, ErrCount, 0},
		{"Scatterv recv too small", func(c collective.Comm) error {
			return c.Scatterv(make([]byte, 6), []int{2, 2, 2}, []int{0, 2, 4}, make([]byte, 2-c.Rank()/2), 0)
		}, ErrTruncate, 2},
		{"Allreduce send and recv", func(c collective.Comm) error {
			return c.AllreduceInt64(make([]int64, 2), make([]int64, 2-c.Rank()/2), collective.OpSum)
		}, ErrCount, 2},
		{"Allreduce lengths", func(c collective.Comm) error {
			n := 2 - c.Rank()/2
			return c.AllreduceInt64(make([]int64, n), make([]int64, n), collective.OpSum)
		}, ErrCount, 2},
		{"Allreduce ops", func(c collective.Comm) error {
			return c.AllreduceInt64(nil, nil, collective.Op(c.Rank()%2))
		}, ErrMismatch, 1},
		{"Allreduce unknown op", func(c collective.Comm) error {
			return c.AllreduceInt64(nil, nil, collective.Op(7))
		}, ErrArg, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t, 3, Options{}, func(c collective.Comm) error {
				err := tt.call(c)
				var e *Error
				if !errors.As(err, &e) || e.Kind != tt.want || e.Rank != tt.rank {
					return fmt.Errorf("got %v, want %v naming rank %d", err, tt.want, tt.rank)
				}
				return c.Barrier()
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNoAliasing checks that ranks never share memory through a call.
func TestNoAliasing(t *testing.T) {
	err := run(t, 4, Options{}, func(c collective.Comm) error {
		buf := []byte("data")
		if err := c.Bcast(buf, 0); err != nil {
			return err
		}
		buf[0] = byte(c.Rank()) // each rank writes its own copy
		if err := c.Barrier(); err != nil {
			return err
		}
		if buf[0] != byte(c.Rank()) || string(buf[1:]) != "ata" {
			return fmt.Errorf("buf %q", buf)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunArgs(t *testing.T) {
	if err := Run(0, func(collective.Comm) error { return nil }); !errors.Is(err, ErrArg) {
		t.Errorf("Run(0): got %v, want ErrArg", err)
	}
	err := Run(1, func(c collective.Comm) error {
		if c.Rank() != 0 || c.Size() != 1 {
			return fmt.Errorf("rank %d of %d", c.Rank(), c.Size())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
