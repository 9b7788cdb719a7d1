package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/storetest"
)

// The durability tests run the store on a memFS and cut the power
// (memFS.crashClone) at chosen moments, then open the store on what the
// cut left and check it against what the store had acknowledged. A strict
// cut keeps nothing that was not synced, so leaving out any sync the
// store's promises rest on makes them fail; a torn cut also keeps part of
// what was written since, so the recovery of damaged tails is exercised.
// TestCrashKeepsAcknowledgedBlocks (crash_test.go) does the same with a
// real process killed on a real file system.

// TestPowerCutKeepsAcknowledged: puts and deletes run from several
// goroutines, with small packs so that packs roll and compaction runs;
// after a power cut at each of these moments every acknowledged put reads
// back with its bytes, every acknowledged delete stays deleted, whatever
// else is held reads back whole, the store keeps its ID and layout, and
// the recovered store is durable in its turn:
//
//   - right after Open created the store;
//   - after a phase of puts;
//   - three times in the middle of puts and deletes in flight, with
//     records or block files written and not synced;
//   - after that phase, and after a phase of deletes only;
//   - (LayoutPack) after a compaction pass;
//   - after a last phase of puts.
//
// Leaving out any fdatasync or directory fsync of the put and delete paths
// makes it fail, but for the fsync of DIR after STORE's rename: for a new
// store, the layout's mkdir in DIR is fsynced next, before Open returns,
// and that covers STORE too; TestPowerCutKeepsStoreFile checks
// writeFileDurable on its own. Two syncs are not needed for what the store
// acknowledges, and it passes without them:
//
//   - the fsync of DIR/packs after compaction unlinks a pack: without it a
//     cut can bring the pack back. Its live records were copied, and
//     fdatasynced, to a newer pack before the unlink, and Open replays the
//     packs in sequence, so the copies win; its dead records stay dead, for
//     the tombstones that killed them are in newer packs, and one is only
//     dropped by compacting its pack after the target pack's unlink: an
//     unlink in the same directory, made durable by any fsync that makes
//     the later one durable. The fsync only makes sure the space comes back.
//   - the fdatasync after Open cuts a torn tail off the active pack: without
//     it a cut can bring the tail back, which the next Open cuts again, and
//     the first batch written after the cut is fdatasynced, new size
//     included, before it is acknowledged.
func TestPowerCutKeepsAcknowledged(t *testing.T) {
	for _, layout := range layouts {
		t.Run(string(layout), func(t *testing.T) {
			const dir = "/store"
			mfs := newMemFS()
			s := openT(t, dir, Options{Layout: layout, PackSize: 64 << 10, MaxBatch: 8, fs: mfs})
			defer s.Close()
			l := newLedger()
			rng := rand.New(rand.NewSource(1))
			// cut cuts the power twice, strictly and torn, and returns the
			// checks of what each cut left, to run once nothing else is
			// using s.
			cut := func(when string) (check func()) {
				var checks []func()
				for _, torn := range []bool{false, true} {
					var r *rand.Rand
					if torn {
						r = rng
					}
					crashed, held, gone := l.cut(mfs, r)
					when := fmt.Sprintf("%s (torn %v)", when, torn)
					checks = append(checks, func() {
						checkCut(t, when, crashed, dir, s.ID(), layout, l, held, gone)
					})
				}
				return func() {
					for _, c := range checks {
						c()
					}
				}
			}

			cut("new store")()
			l.run(t, s, phasePuts, 20)
			cut("after puts")()

			// In flight: the power goes at the 10th, 20th and 30th
			// fdatasync from now, each time with the batch (or the block
			// file) it was to make durable written and not synced.
			// In LayoutFiles the put goroutines fdatasync, several at once.
			var (
				syncs  atomic.Int64
				mu     sync.Mutex
				checks []func()
			)
			hook := func() {
				if n := syncs.Add(1); n%10 == 0 && n <= 30 {
					mu.Lock()
					defer mu.Unlock()
					checks = append(checks, cut(fmt.Sprintf("in flight, at fdatasync %d", n)))
				}
			}
			mfs.beforeSync.Store(&hook)
			l.run(t, s, phaseMixed, 40)
			mfs.beforeSync.Store(nil)
			if n := syncs.Load(); n < 30 {
				t.Fatalf("the mixed phase made %d fdatasyncs; the cuts need 30", n)
			}
			for _, check := range checks {
				check()
			}
			cut("after puts and deletes")()
			l.run(t, s, phaseDeletes, 10)
			cut("after deletes")()
			if p, ok := s.impl.(*pack); ok {
				p.compactPass()
				cut("after compaction")()
			}
			l.run(t, s, phasePuts, 20)
			cut("after more puts")()
		})
	}
}

// checkCut opens the store in dir on crashed, a power cut's leftovers, and
// checks it against held and gone, the blocks whose put and whose delete
// the store had acknowledged before the cut; l knows every block's bytes.
func checkCut(t *testing.T, when string, crashed *memFS, dir, id string, layout Layout,
	l *ledger, held, gone map[storage.Hash]bool) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(dir, Options{fs: crashed, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("%s: open after the cut: %v", when, err)
	}
	defer s.Close()
	if s.ID() != id || s.Layout() != layout {
		t.Fatalf("%s: store %s, layout %s after the cut; was %s, %s", when, s.ID(), s.Layout(), id, layout)
	}
	for h := range held {
		if got, err := s.Get(ctx, h); err != nil || !bytes.Equal(got, l.bytes(h)) {
			t.Fatalf("%s: acknowledged block %s lost: %v", when, h.Short(), err)
		}
	}
	for h := range gone {
		if _, err := s.Get(ctx, h); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s: deleted block %s is back: %v", when, h.Short(), err)
		}
	}
	// Whatever else the cut left (puts in flight) must be whole.
	var all []storage.Hash
	for after := (storage.Hash{}); ; {
		page, err := s.List(ctx, after, 100)
		if err != nil {
			t.Fatalf("%s: list: %v", when, err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1]
	}
	var used int64
	for _, h := range all {
		want := l.bytes(h)
		if want == nil {
			t.Fatalf("%s: block %s held, but never put", when, h.Short())
		}
		if got, err := s.Get(ctx, h); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: held block %s: %v", when, h.Short(), err)
		}
		used += int64(len(want))
	}
	if st, _ := s.Stat(ctx); st.Blocks != int64(len(all)) || st.Used != used {
		t.Fatalf("%s: stat %+v, but %d blocks of %d bytes listed", when, st, len(all), used)
	}
	t.Logf("%s: %d acknowledged puts and %d deletes kept; %d blocks held", when, len(held), len(gone), len(all))
	for _, f := range crashed.files() {
		if strings.Contains(f, tmpMarker) {
			t.Fatalf("%s: open left %s", when, f)
		}
	}

	// The recovered store keeps what it acknowledges too: a torn tail it
	// kept, or a cut not made durable, would lose the blocks put after.
	data, h := l.newBlock(5000)
	if _, err := s.Put(ctx, h, data); err != nil {
		t.Fatalf("%s: put after the cut: %v", when, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{fs: crashed.crashClone(nil), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("%s: open after a second cut: %v", when, err)
	}
	defer s2.Close()
	for h := range held {
		if _, err := s2.Get(ctx, h); err != nil {
			t.Fatalf("%s: block %s lost in a second cut: %v", when, h.Short(), err)
		}
	}
	if got, err := s2.Get(ctx, h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s: block put after the cut lost in a second cut: %v", when, err)
	}
}

type phase int

const (
	phasePuts    phase = iota // new blocks
	phaseMixed                // new blocks, deletes of held ones, puts of deleted ones
	phaseDeletes              // deletes of held blocks
)

// ledger tracks, per block, what the store has acknowledged. An operation
// is recorded when it begins (the block's fate is uncertain from then) and
// when it is acknowledged; cut takes the power cut under the same lock, so
// the blocks it reports held or gone were acknowledged before the cut and
// no operation on them began before it and is still in doubt.
type ledger struct {
	mu    sync.Mutex
	data  map[storage.Hash][]byte // every block put
	held  map[storage.Hash]bool   // put acknowledged, no delete begun since
	gone  map[storage.Hash]bool   // delete acknowledged, no put begun since
	mine  [][]storage.Hash        // per worker: blocks it put, for it to delete
	seeds int64
}

func newLedger() *ledger {
	return &ledger{data: map[storage.Hash][]byte{}, held: map[storage.Hash]bool{}, gone: map[storage.Hash]bool{}}
}

const workers = 8

// run runs n operations of phase p from each of workers goroutines, each
// on blocks of its own, and returns when all are done.
func (l *ledger) run(t *testing.T, s *Store, p phase, n int) {
	t.Helper()
	l.mu.Lock()
	for len(l.mine) < workers {
		l.mine = append(l.mine, nil)
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewSource(int64(p)<<8 | int64(w)))
			for range n {
				if err := l.step(s, w, p, rng); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// step runs one operation of worker w.
func (l *ledger) step(s *Store, w int, p phase, rng *rand.Rand) error {
	ctx := context.Background()
	l.mu.Lock()
	mine := l.mine[w]
	l.mu.Unlock()
	op := 0 // put a new block
	switch {
	case p == phaseDeletes:
		op = 1
	case p == phaseMixed && len(mine) > 0:
		op = []int{0, 0, 0, 1, 1, 2}[rng.Intn(6)]
	}
	if op > 0 && len(mine) == 0 {
		return nil
	}
	switch op {
	case 1: // delete one or two held blocks
		k := 1 + rng.Intn(2)
		var hs []storage.Hash
		l.mu.Lock()
		for _, i := range rng.Perm(len(mine)) {
			if h := mine[i]; l.held[h] && len(hs) < k {
				hs = append(hs, h)
				delete(l.held, h)
			}
		}
		l.mu.Unlock()
		if len(hs) == 0 {
			return nil
		}
		if _, err := s.Delete(ctx, hs, time.Time{}); err != nil {
			return err
		}
		l.mu.Lock()
		for _, h := range hs {
			l.gone[h] = true
		}
		l.mu.Unlock()
		return nil
	case 2: // put a deleted block back
		h := mine[rng.Intn(len(mine))]
		l.mu.Lock()
		if !l.gone[h] {
			l.mu.Unlock()
			return nil
		}
		data := l.data[h]
		delete(l.gone, h)
		l.mu.Unlock()
		return l.put(s, h, data)
	}
	data, h := l.newBlock(1 + rng.Intn(24<<10))
	l.mu.Lock()
	l.mine[w] = append(l.mine[w], h)
	l.mu.Unlock()
	return l.put(s, h, data)
}

// put puts a block whose put is recorded as begun.
func (l *ledger) put(s *Store, h storage.Hash, data []byte) error {
	if _, err := s.Put(context.Background(), h, data); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held[h] = true
	return nil
}

// cut cuts the power of m now and returns what is left, with the blocks
// whose put and whose delete were acknowledged before.
func (l *ledger) cut(m *memFS, rng *rand.Rand) (*memFS, map[storage.Hash]bool, map[storage.Hash]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return m.crashClone(rng), maps.Clone(l.held), maps.Clone(l.gone)
}

func (l *ledger) bytes(h storage.Hash) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.data[h]
}

// newBlock returns a block of n bytes never returned before, remembered.
func (l *ledger) newBlock(n int) ([]byte, storage.Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seeds++
	data, h := storetest.Block(l.seeds, n)
	l.data[h] = data
	return data, h
}

// TestPowerCutKeepsStoreFile: DIR/STORE, once written, survives a power
// cut whole, with no temporary file left beside it.
func TestPowerCutKeepsStoreFile(t *testing.T) {
	mfs := newMemFS()
	if err := mfs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if err := mfs.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	want := []byte("ckpt-store 1\nid st-000000000000\nlayout pack\n")
	if err := writeFileDurable(mfs, "/d/"+metaName, want); err != nil {
		t.Fatal(err)
	}
	crashed := mfs.crashClone(nil)
	got, err := readFile(crashed, "/d/"+metaName)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the cut: %q, %v; want %q", got, err, want)
	}
	if names := crashed.files(); len(names) != 1 {
		t.Fatalf("after the cut the directory holds %v", names)
	}
}

// TestMemFSCrash checks the crash model the durability tests rely on.
func TestMemFSCrash(t *testing.T) {
	m := newMemFS()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	content := func(m *memFS, name string) string {
		t.Helper()
		b, err := readFile(m, name)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	must(m.Mkdir("/d"))
	if _, err := m.crashClone(nil).Stat("/d"); err == nil {
		t.Fatal("a directory created and not synced in its parent survives")
	}
	must(m.SyncDir("/"))
	f, err := m.Create("/d/a")
	must(err)
	_, err = f.Write([]byte("hello"))
	must(err)
	if _, err := m.crashClone(nil).Stat("/d/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file created in a directory not synced since: stat err = %v", err)
	}
	must(m.SyncDir("/d"))
	if got := content(m.crashClone(nil), "/d/a"); got != "" {
		t.Fatalf("data not synced survives: %q", got)
	}
	must(f.SyncData())
	_, err = f.WriteAt([]byte("J"), 0)
	must(err)
	must(f.Truncate(3))
	if got := content(m.crashClone(nil), "/d/a"); got != "hello" {
		t.Fatalf("synced data: %q, want hello", got)
	}
	// A torn cut keeps some prefix of the writes since the sync.
	torn := map[string]bool{}
	rng := rand.New(rand.NewSource(1))
	for range 50 {
		torn[content(m.crashClone(rng), "/d/a")] = true
	}
	if !torn["hello"] || !torn["Jello"] || !torn["Jel"] || len(torn) != 3 {
		t.Fatalf("torn cuts left %v, want hello, Jello and Jel", torn)
	}
	must(f.SyncData())
	must(f.Close())
	must(m.Rename("/d/a", "/d/b"))
	must(m.Remove("/d/b"))
	if got := content(m.crashClone(nil), "/d/a"); got != "Jel" {
		t.Fatalf("renamed and removed without a directory sync: %q, want the old name back", got)
	}
	must(m.SyncDir("/d"))
	if _, err := m.crashClone(nil).Stat("/d/a"); err == nil {
		t.Fatal("a synced remove did not survive")
	}
}
