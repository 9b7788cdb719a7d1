package collective_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// regionsFor gives rank r of a job deterministic regions with uneven sizes,
// including an empty one on some ranks.
func regionsFor(r int, seed int64) []collective.Region {
	rng := rand.New(rand.NewSource(seed + int64(r)))
	sizes := []int{rng.Intn(20_000), 3000 + 1000*r, 0}
	if r%2 == 1 {
		sizes[2] = 777
	}
	var out []collective.Region
	for i, n := range sizes {
		b := make([]byte, n)
		rng.Read(b)
		out = append(out, collective.Region{Name: fmt.Sprintf("r%d", i), Data: b})
	}
	return out
}

func clone(rs []collective.Region) []collective.Region {
	out := make([]collective.Region, len(rs))
	for i, r := range rs {
		out[i] = collective.Region{Name: r.Name, Data: append([]byte(nil), r.Data...)}
	}
	return out
}

func TestCheckpointRestoreAcrossGroupings(t *testing.T) {
	for _, tc := range []struct {
		ranks, perLeader, perNode int
		leaderMem                 int64
	}{
		{1, 0, 0, 0}, {2, 0, 0, 0}, {3, 1, 0, 0}, {4, 0, 2, 0}, {5, 2, 0, 1 << 14},
		{6, 3, 0, 1 << 13}, {7, 0, 3, 0}, {8, 8, 0, 1 << 12}, {8, 0, 4, 1 << 15},
	} {
		name := fmt.Sprintf("ranks=%d/perLeader=%d/perNode=%d/mem=%d", tc.ranks, tc.perLeader, tc.perNode, tc.leaderMem)
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cl := versiontest.New(3)
			err := local.RunWith(tc.ranks, local.Options{RanksPerNode: tc.perNode}, func(c collective.Comm) error {
				s, err := collective.NewSession(c, collective.Options{RanksPerLeader: tc.perLeader, LeaderMemory: tc.leaderMem, BlockSize: 4096})
				if err != nil {
					return err
				}
				defer s.Close()
				b := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool()}
				orig := regionsFor(c.Rank(), 1)
				live := clone(orig)
				res, err := s.Checkpoint(ctx, b, live, map[string]string{"step": "1"})
				if err != nil {
					return err
				}
				if res.Version != 1 {
					return fmt.Errorf("version %d, want 1", res.Version)
				}
				for _, r := range live { // the program moves on
					for i := range r.Data {
						r.Data[i] ^= 0x5a
					}
				}
				v, err := s.Restore(ctx, b, 0, live)
				if err != nil {
					return err
				}
				if v != 1 {
					return fmt.Errorf("restored version %d, want 1", v)
				}
				for i := range orig {
					if !bytes.Equal(orig[i].Data, live[i].Data) {
						return fmt.Errorf("region %s differs after restore", orig[i].Name)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			m := cl.Versions("j")[0]
			if m.Meta[catalog.MetaRanks] != fmt.Sprint(tc.ranks) || m.Meta[catalog.MetaStep] != "1" {
				t.Fatalf("meta = %v", m.Meta)
			}
			objs := map[string]bool{}
			for _, b := range m.Blocks {
				objs[fmt.Sprintf("%d/%s", b.Rank, b.Object)] = true
			}
			if len(objs) != 3*tc.ranks {
				t.Fatalf("%d objects in manifest, want %d (empty regions must be recorded)", len(objs), 3*tc.ranks)
			}
		})
	}
}

func TestFailedLeaderCommitsNothing(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	err := local.Run(4, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{RanksPerLeader: 2, BlockSize: 4096})
		if err != nil {
			return err
		}
		defer s.Close()
		b := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool()}
		regions := regionsFor(c.Rank(), 2)
		if _, err := s.Checkpoint(ctx, b, regions, nil); err != nil {
			return fmt.Errorf("first checkpoint: %w", err)
		}
		c.Barrier()
		if c.Rank() == 0 {
			for _, st := range cl.Mem {
				st.SetFaults(memstore.Faults{Put: func(storage.Hash) error { return errors.New("disk on fire") }})
			}
		}
		c.Barrier()
		for _, r := range regions {
			if len(r.Data) > 0 {
				r.Data[0]++
			}
		}
		_, err = s.Checkpoint(ctx, b, regions, nil)
		if err == nil {
			return errors.New("checkpoint with failing stores succeeded")
		}
		if !strings.Contains(err.Error(), "nothing committed") || !strings.Contains(err.Error(), "disk on fire") {
			return fmt.Errorf("error does not say what happened: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cl.Versions("j")); n != 1 {
		t.Fatalf("%d versions after a failed checkpoint, want 1", n)
	}
	if cl.Aborts() != 1 {
		t.Fatalf("aborts = %d, want 1", cl.Aborts())
	}
}

func TestRestoreRefusesOtherRankCountAndSizes(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	write := func(n int, size int) error {
		return local.Run(n, func(c collective.Comm) error {
			s, err := collective.NewSession(c, collective.Options{BlockSize: 4096})
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Checkpoint(ctx, &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool()},
				[]collective.Region{{Name: "x", Data: make([]byte, size)}}, nil)
			return err
		})
	}
	if err := write(4, 1000); err != nil {
		t.Fatal(err)
	}
	restore := func(n, size int) error {
		return local.Run(n, func(c collective.Comm) error {
			s, err := collective.NewSession(c, collective.Options{BlockSize: 4096})
			if err != nil {
				return err
			}
			defer s.Close()
			data := bytes.Repeat([]byte{7}, size)
			_, err = s.Restore(ctx, &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool()}, 1,
				[]collective.Region{{Name: "x", Data: data}})
			if err != nil && data[0] != 7 {
				return errors.New("a refused restore touched the region")
			}
			return err
		})
	}
	if err := restore(3, 1000); err == nil || !strings.Contains(err.Error(), "written by 4 ranks") {
		t.Fatalf("restore on 3 ranks: %v", err)
	}
	if err := restore(4, 999); err == nil || !strings.Contains(err.Error(), "holds 1000 bytes") {
		t.Fatalf("restore into smaller regions: %v", err)
	}
	if err := restore(4, 1000); err != nil {
		t.Fatal(err)
	}
}

// TestIncrementalCheckpoint: the second checkpoint sends only the blocks
// that changed; an unchanged (static) region is referenced, and the result
// restores exactly. Run with fixed and content-defined chunking.
func TestIncrementalCheckpoint(t *testing.T) {
	for _, kind := range []chunk.Kind{chunk.KindFixed, chunk.KindCDC} {
		t.Run(string(kind), func(t *testing.T) {
			ctx := context.Background()
			cl := versiontest.New(3)
			c, err := chunk.Options{Kind: kind, Size: 4096}.New()
			if err != nil {
				t.Fatal(err)
			}
			var sent [2]int64
			err = local.RunWith(4, local.Options{RanksPerNode: 2}, func(comm collective.Comm) error {
				s, err := collective.NewSession(comm, collective.Options{BlockSize: 4096, Chunker: c, LeaderMemory: 1 << 16})
				if err != nil {
					return err
				}
				defer s.Close()
				b := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool(), Writer: client.WriterOptions{Replicas: 1}}
				static := make([]byte, 200_000)
				rand.New(rand.NewSource(int64(comm.Rank()))).Read(static)
				field := make([]byte, 300_000)
				rand.New(rand.NewSource(int64(100 + comm.Rank()))).Read(field)
				regions := []collective.Region{{Name: "static", Data: static}, {Name: "field", Data: field}}
				r1, err := s.Checkpoint(ctx, b, regions, nil)
				if err != nil {
					return err
				}
				field[150_000] ^= 1 // one byte changes on every rank
				r2, err := s.Checkpoint(ctx, b, regions, nil)
				if err != nil {
					return err
				}
				if comm.Rank() == 0 {
					sent = [2]int64{r1.SentBytes, r2.SentBytes}
				}
				want := append([]byte(nil), field...)
				field[0]++
				if _, err := s.Restore(ctx, b, r2.Version, regions); err != nil {
					return err
				}
				if !bytes.Equal(field, want) {
					return errors.New("field differs after restore")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// One changed block per rank: at most 4 blocks of up to 4x4096 (CDC max).
			if sent[0] < 4*500_000 || sent[1] > 4*4*4096 || sent[1] == 0 {
				t.Fatalf("sent %d then %d bytes; want everything, then only the changed blocks", sent[0], sent[1])
			}
		})
	}
}

// TestRestoreFailureReachesEveryRank: when a leader cannot read a block
// (every copy corrupt), every rank returns the error and none hangs, over
// several rounds.
func TestRestoreFailureReachesEveryRank(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	err := local.RunWith(4, local.Options{RanksPerNode: 2}, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{BlockSize: 4096, LeaderMemory: 1 << 14})
		if err != nil {
			return err
		}
		defer s.Close()
		b := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool()}
		regions := regionsFor(c.Rank(), 3)
		if _, err := s.Checkpoint(ctx, b, regions, nil); err != nil {
			return err
		}
		c.Barrier()
		if c.Rank() == 0 {
			m := cl.Versions("j")[0]
			for _, blk := range m.Blocks[len(m.Blocks)/2:] {
				for _, st := range cl.Mem {
					st.Corrupt(blk.Key)
				}
			}
		}
		c.Barrier()
		_, err = s.Restore(ctx, b, 1, regions)
		if err == nil || !strings.Contains(err.Error(), "restore of j failed") {
			return fmt.Errorf("restore with corrupt blocks: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSlowStoresKeepTheirBlocks: a leader gathers each round into one of a
// few slabs and puts blocks straight from it, so a slab must not be
// gathered into again before the stores have taken all of its blocks. The
// stores here copy a block only after a pause (memstore checks the hash on
// arrival, then sleeps in the fault hook, then copies): a slab reused too
// early would leave other bytes behind the right hash, which the restore
// would find. The leader keeps no slab past an operation.
func TestSlowStoresKeepTheirBlocks(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(3)
	for _, m := range cl.Mem {
		m.SetFaults(memstore.Faults{Put: func(storage.Hash) error {
			time.Sleep(time.Duration(rand.Intn(2000)) * time.Microsecond)
			return nil
		}})
	}
	err := local.Run(4, func(c collective.Comm) error {
		// 16 KiB of leader memory: 4 slabs of one 4 KiB block per member.
		s, err := collective.NewSession(c, collective.Options{BlockSize: 4096, LeaderMemory: 1 << 14})
		if err != nil {
			return err
		}
		defer s.Close()
		b := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool()}
		rng := rand.New(rand.NewSource(int64(c.Rank())))
		orig := []collective.Region{{Name: "field", Data: make([]byte, 40*4096+123)}}
		rng.Read(orig[0].Data)
		live := clone(orig)
		if _, err := s.Checkpoint(ctx, b, live, nil); err != nil {
			return err
		}
		// Its slabs are let go once the checkpoint's blocks are stored,
		// so closing the writer reuses their memory.
		if collective.HoldsSlabs(s) {
			return fmt.Errorf("rank %d kept its slabs after the checkpoint", c.Rank())
		}
		clear(live[0].Data)
		if _, err := s.Restore(ctx, b, 0, live); err != nil {
			return err
		}
		if collective.HoldsSlabs(s) {
			return fmt.Errorf("rank %d kept its slabs after the restore", c.Rank())
		}
		if !bytes.Equal(orig[0].Data, live[0].Data) {
			return fmt.Errorf("rank %d: restored data differs", c.Rank())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMalformedMemberFailsEveryRank: a leader that cannot read a member's
// region description fails the checkpoint on every rank (naming the
// member) instead of returning early and leaving its members blocked in
// the rounds; nothing is committed.
func TestMalformedMemberFailsEveryRank(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(2)
	done := make(chan error, 1)
	go func() {
		done <- local.Run(4, func(c collective.Comm) error {
			s, err := collective.NewSession(c, collective.Options{RanksPerLeader: 2, BlockSize: 4096})
			if err != nil {
				return err
			}
			defer s.Close()
			j := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool()}
			regions := regionsFor(c.Rank(), 4)
			if _, err := s.Checkpoint(ctx, j, regions, nil); err != nil {
				return fmt.Errorf("first checkpoint: %w", err)
			}
			if c.Rank() == 3 {
				collective.SetMetaHook(s, func(b []byte) []byte { return b[:len(b)-5] })
			}
			_, err = s.Checkpoint(ctx, j, regions, nil)
			if err == nil || !strings.Contains(err.Error(), "group member 1") || !strings.Contains(err.Error(), "nothing committed") {
				return fmt.Errorf("rank %d: checkpoint with a malformed member description: %v", c.Rank(), err)
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("ranks still blocked after 2 minutes: a rank left the checkpoint early")
	}
	if n := len(cl.Versions("j")); n != 1 || cl.Aborts() != 1 {
		t.Fatalf("%d versions, %d aborts; want only the first, the second aborted", n, cl.Aborts())
	}
}
