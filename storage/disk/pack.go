package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage"
)

// pack is LayoutPack: an append-only log of records (record.go) split into
// pack files DIR/packs/SSSSSSSS.pack, SSSSSSSS the pack's sequence number in
// hex. Only the newest pack, the active one, is appended to; it is sealed
// and a new one started once it reaches Options.PackSize. An in-memory
// index maps each held hash to its put record; Open rebuilds it by reading
// the record headers of every pack in sequence order.
//
// One committer goroutine writes every record: it takes a batch of puts and
// deletes, writes their records at the end of the active pack, fdatasyncs it
// once, and answers them all. A delete appends a tombstone naming the pack
// and offset of the put record it kills. A background compactor rewrites a
// sealed pack once more than half of it is dead (deleted blocks, obsolete
// tombstones): it moves the live records and the still-needed tombstones to
// the active pack through the committer, then removes the old pack file.
type pack struct {
	dir      string // DIR/packs
	fsys     fileSystem
	log      *zap.Logger
	packSize int64

	c        *committer[*packReq]
	compactq chan struct{}      // wakes the compactor
	passq    chan chan struct{} // compactPass's requests
	quit     chan struct{}      // stops the compactor
	paused   atomic.Bool        // Store.PauseCompaction: compact nothing until false
	wg       sync.WaitGroup

	// Touched only by the committer goroutine.
	needRoll bool  // the last sync failed: start a new pack
	broken   error // a failed batch could not be cut off: refuse writes

	mu struct {
		sync.Mutex
		index  map[storage.Hash]loc
		packs  map[uint32]*packFile
		active *packFile
	}
}

// loc is where a put record is: pack, offset of its header, data length.
type loc struct {
	pack uint32
	off  int64
	n    int64
}

// tomb is a delete record: it kills the put record of hash at target.
type tomb struct {
	hash   storage.Hash
	target loc
}

type packFile struct {
	seq   uint32
	path  string
	f     fsFile
	size  int64  // bytes of records
	live  int64  // bytes of the live put records, headers included
	tombs []tomb // the delete records it holds
	refs  int    // readers using f; with dead, the last one closes f
	dead  bool   // removed by compaction
}

type reqKind int

const (
	reqPut  reqKind = iota // append a put record for a new block
	reqDel                 // append tombstones for held blocks
	reqMove                // compaction: copy a live put record
	reqTomb                // compaction: copy a still-needed tombstone
)

type packReq struct {
	kind reqKind
	h    storage.Hash
	data []byte         // reqPut, reqMove
	src  loc            // reqMove: the record being moved
	hs   []storage.Hash // reqDel
	t    tomb           // reqTomb
	done chan error
}

func packName(seq uint32) string { return fmt.Sprintf("%08x.pack", seq) }

func recordSize(n int64) int64 { return recHeaderSize + n }

func openPack(fsys fileSystem, dir string, opts Options, log *zap.Logger, add func(storage.Hash, int64)) (*pack, error) {
	p := &pack{
		dir:      filepath.Join(dir, "packs"),
		fsys:     fsys,
		log:      log,
		packSize: opts.PackSize,
		compactq: make(chan struct{}, 1),
		passq:    make(chan chan struct{}),
		quit:     make(chan struct{}),
	}
	p.mu.index = make(map[storage.Hash]loc)
	p.mu.packs = make(map[uint32]*packFile)
	if err := fsys.Mkdir(p.dir); err == nil {
		if err := fsys.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("disk: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("disk: %w", err)
	}
	if err := p.load(); err != nil {
		p.closeFiles()
		return nil, err
	}
	for h, l := range p.mu.index {
		add(h, l.n)
	}
	// An active pack left mostly dead (a collection after the disk
	// filled, then a restart) is sealed now, for the compactor.
	if err := p.sealIfDead(); err != nil {
		p.closeFiles()
		return nil, err
	}
	p.c = newCommitter(opts.MaxBatch, p.commit, func(r *packReq, err error) { r.done <- err })
	p.wg.Add(1)
	go p.compactor()
	p.kickCompactor()
	return p, nil
}

// load opens every pack in sequence order and replays its records into the
// index. For sealed packs it reads only the headers (one pread each); the
// active pack, whose tail a crash may have left half written, is read whole
// and its data checksummed, and cut after its last good record.
func (p *pack) load() error {
	ents, err := p.fsys.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	var seqs []uint32
	for _, e := range ents {
		var seq uint32
		if n, _ := fmt.Sscanf(e.Name(), "%08x.pack", &seq); n == 1 && seq > 0 && e.Name() == packName(seq) {
			seqs = append(seqs, seq)
			continue
		}
		p.log.Warn("ignoring unexpected file in pack directory", zap.String("file", e.Name()))
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if err := p.loadPack(seq, i == len(seqs)-1); err != nil {
			return err
		}
	}
	if len(seqs) == 0 {
		return p.newPack(1)
	}
	return nil
}

func (p *pack) loadPack(seq uint32, active bool) error {
	path := filepath.Join(p.dir, packName(seq))
	f, err := p.fsys.OpenReadWrite(path)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("disk: %w", err)
	}
	pf := &packFile{seq: seq, path: path, f: f, size: info.Size()}
	p.mu.packs[seq] = pf
	if active {
		p.mu.active = pf
	}
	var hdr [recHeaderSize]byte
	var data []byte
	off := int64(0)
	for off < pf.size {
		var r recHeader
		_, err := f.ReadAt(hdr[:], off)
		if err == nil {
			r, err = parseHeader(hdr[:])
		}
		if err == nil && off+recordSize(int64(r.length)) > pf.size {
			err = fmt.Errorf("%w: record runs past the end of the pack", errBadRecord)
		}
		if err == nil && active && r.kind == recPut {
			data = slices.Grow(data[:0], int(r.length))[:r.length]
			if _, err = f.ReadAt(data, off+recHeaderSize); err == nil {
				err = r.checkData(data)
			}
		}
		if err != nil {
			if !active {
				// A sealed pack was fully synced before the next one was
				// started: this is damage, not a torn write. Keep what
				// was read; the rest of the pack counts as dead space.
				p.log.Error("damaged pack: ignoring the rest of it", zap.String("pack", path),
					zap.Int64("offset", off), zap.Error(err))
				return nil
			}
			p.log.Warn("cutting the unacknowledged tail of the active pack", zap.String("pack", path),
				zap.Int64("offset", off), zap.Int64("bytes", pf.size-off), zap.Error(err))
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("disk: cut %s: %w", path, err)
			}
			if err := f.SyncData(); err != nil {
				return fmt.Errorf("disk: cut %s: %w", path, err)
			}
			pf.size = off
			return nil
		}
		switch r.kind {
		case recPut:
			l := loc{pack: seq, off: off, n: int64(r.length)}
			if old, ok := p.mu.index[r.hash]; ok {
				p.mu.packs[old.pack].live -= recordSize(old.n)
			}
			p.mu.index[r.hash] = l
			pf.live += recordSize(l.n)
		case recDel:
			t := tomb{hash: r.hash, target: loc{pack: r.tpack, off: int64(r.toff)}}
			pf.tombs = append(pf.tombs, t)
			if cur, ok := p.mu.index[r.hash]; ok && cur.pack == t.target.pack && cur.off == t.target.off {
				delete(p.mu.index, r.hash)
				p.mu.packs[cur.pack].live -= recordSize(cur.n)
			}
		}
		off += recordSize(int64(r.length))
	}
	return nil
}

// newPack creates pack seq, durably, and makes it the active pack.
func (p *pack) newPack(seq uint32) error {
	path := filepath.Join(p.dir, packName(seq))
	f, err := p.fsys.Create(path)
	if err != nil {
		return fmt.Errorf("disk: new pack: %w", err)
	}
	if err := p.fsys.SyncDir(p.dir); err != nil {
		f.Close()
		p.fsys.Remove(path)
		return fmt.Errorf("disk: new pack: %w", err)
	}
	pf := &packFile{seq: seq, path: path, f: f}
	p.mu.Lock()
	p.mu.packs[seq] = pf
	p.mu.active = pf
	p.mu.Unlock()
	return nil
}

func (p *pack) put(h storage.Hash, data []byte) error {
	return p.do(&packReq{kind: reqPut, h: h, data: data})
}

func (p *pack) del(hs []storage.Hash) (int, error) {
	if err := p.do(&packReq{kind: reqDel, hs: hs}); err != nil {
		return 0, err
	}
	return len(hs), nil
}

// do submits r to the committer and waits for its answer.
func (p *pack) do(r *packReq) error {
	r.done = make(chan error, 1)
	if err := p.c.submit(r); err != nil {
		return err
	}
	return p.c.wait(r.done)
}

func (p *pack) get(h storage.Hash, size int64) ([]byte, string, error) {
	p.mu.Lock()
	l, ok := p.mu.index[h]
	if !ok {
		p.mu.Unlock()
		return nil, "", fs.ErrNotExist
	}
	pf := p.mu.packs[l.pack]
	pf.refs++
	p.mu.Unlock()
	defer p.release(pf)

	where := fmt.Sprintf("%s at offset %d", pf.path, l.off)
	buf := make([]byte, recordSize(l.n))
	if _, err := pf.f.ReadAt(buf, l.off); err != nil {
		return nil, where, fmt.Errorf("read %s: %w", where, err)
	}
	r, err := parseHeader(buf)
	if err == nil && (r.kind != recPut || r.hash != h || int64(r.length) != l.n) {
		err = fmt.Errorf("%w: header names another block", errBadRecord)
	}
	if err != nil {
		return nil, where, fmt.Errorf("%s: %w: %w", where, storage.ErrHashMismatch, err)
	}
	// The caller re-hashes the data; the CRC is not checked twice.
	return buf[recHeaderSize:], where, nil
}

// release drops a reader's hold on pf, closing it if compaction removed it.
func (p *pack) release(pf *packFile) {
	p.mu.Lock()
	pf.refs--
	closeNow := pf.dead && pf.refs == 0
	p.mu.Unlock()
	if closeNow {
		pf.f.Close()
	}
}

// commit writes a batch of requests as records at the end of the active
// pack, fdatasyncs it once and answers every request. Puts and deletes
// change the index as the batch is laid out (Store keeps readers away from
// those hashes until they are answered) and are undone if the batch fails;
// compaction moves change it only once their copies are durable, since
// readers may be reading those blocks. A delete of a block moved earlier in
// the same batch kills the copy. A failed batch is cut off the pack before
// anyone is answered.
func (p *pack) commit(batch []*packReq) {
	errs := make([]error, len(batch))
	answer := func() {
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
	fail := func(err error) {
		for i := range errs {
			errs[i] = err
		}
		answer()
	}
	if p.broken != nil {
		fail(p.broken)
		return
	}
	p.mu.Lock()
	roll := p.needRoll || p.mu.active.size >= p.packSize
	next := p.mu.active.seq + 1
	p.mu.Unlock()
	if roll {
		if err := p.newPack(next); err != nil {
			fail(err)
			return
		}
		p.needRoll = false
		p.kickCompactor()
	}

	p.mu.Lock()
	pf := p.mu.active
	start := pf.size
	end := start
	type move struct {
		h         storage.Hash
		src, dst  loc
		cancelled bool // deleted later in the batch
	}
	var (
		bufs   [][]byte
		undo   []func()
		moves  []move
		moving = make(map[storage.Hash]int) // index in moves
		freed  bool
		record = func(r *recHeader, data []byte) int64 {
			b := make([]byte, recHeaderSize)
			r.marshal(b)
			bufs = append(bufs, b)
			if len(data) > 0 {
				bufs = append(bufs, data)
			}
			off := end
			end += recordSize(int64(len(data)))
			return off
		}
	)
	for _, r := range batch {
		switch r.kind {
		case reqMove:
			if cur, ok := p.mu.index[r.h]; !ok || cur != r.src {
				continue // deleted since the compactor read it
			}
			h := &recHeader{kind: recPut, length: uint32(len(r.data)), hash: r.h, dcrc: crc32c(r.data)}
			l := loc{pack: pf.seq, off: record(h, r.data), n: int64(len(r.data))}
			moving[r.h] = len(moves)
			moves = append(moves, move{h: r.h, src: r.src, dst: l})
		case reqPut:
			h := &recHeader{kind: recPut, length: uint32(len(r.data)), hash: r.h, dcrc: crc32c(r.data)}
			l := loc{pack: pf.seq, off: record(h, r.data), n: int64(len(r.data))}
			p.mu.index[r.h] = l
			pf.live += recordSize(l.n)
			undo = append(undo, func() {
				pf.live -= recordSize(l.n)
				delete(p.mu.index, r.h)
			})
		case reqDel:
			for _, hh := range r.hs {
				cur, ok := p.mu.index[hh]
				if !ok {
					continue
				}
				t := tomb{hash: hh, target: cur}
				if i, ok := moving[hh]; ok && !moves[i].cancelled {
					// Moved earlier in this batch: kill the copy.
					t.target = moves[i].dst
					moves[i].cancelled = true
				}
				record(&recHeader{kind: recDel, tpack: t.target.pack, toff: uint64(t.target.off), hash: hh}, nil)
				delete(p.mu.index, hh)
				p.mu.packs[cur.pack].live -= recordSize(cur.n)
				pf.tombs = append(pf.tombs, t)
				freed = true
				undo = append(undo, func() {
					p.mu.index[hh] = cur
					p.mu.packs[cur.pack].live += recordSize(cur.n)
					pf.tombs = pf.tombs[:len(pf.tombs)-1]
				})
			}
		case reqTomb:
			if tp := p.mu.packs[r.t.target.pack]; tp == nil || tp.dead {
				continue // its target is gone: the tombstone is not needed
			}
			record(&recHeader{kind: recDel, tpack: r.t.target.pack, toff: uint64(r.t.target.off), hash: r.t.hash}, nil)
			pf.tombs = append(pf.tombs, r.t)
			undo = append(undo, func() { pf.tombs = pf.tombs[:len(pf.tombs)-1] })
		}
	}
	p.mu.Unlock()

	if end == start {
		answer()
		return
	}
	err := writeAll(pf.f, bufs, start)
	if err == nil {
		err = pf.f.SyncData()
		if err != nil {
			// After a failed fsync the page cache of this file cannot be
			// trusted: continue in a new pack.
			p.needRoll = true
		}
	}
	if err != nil {
		p.mu.Lock()
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		p.mu.Unlock()
		if terr := pf.f.Truncate(start); terr != nil {
			p.broken = fmt.Errorf("pack %s: cutting a failed batch: %w (after %w)", pf.path, terr, err)
		}
		fail(fmt.Errorf("pack %s: %w", pf.path, err))
		return
	}
	p.mu.Lock()
	pf.size = end
	for _, m := range moves {
		// The copies become visible only now that they are written: a
		// reader of the index never finds a record that is not there yet.
		if cur, ok := p.mu.index[m.h]; !m.cancelled && ok && cur == m.src {
			p.mu.index[m.h] = m.dst
			pf.live += recordSize(m.dst.n)
			p.mu.packs[m.src.pack].live -= recordSize(m.src.n)
		}
	}
	p.mu.Unlock()
	if freed {
		// Deletes may have left the active pack mostly dead, and only
		// sealed packs are compacted: seal it, or the space stays taken
		// (a full disk would stay full). Before the answer, so that a
		// caller who waits for compaction after its delete sees it.
		if err := p.sealIfDead(); err != nil {
			p.log.Warn("sealing a mostly dead active pack failed; it is retried after the next delete", zap.Error(err))
		}
	}
	answer()
	if freed {
		p.kickCompactor()
	}
}

// sealMinSize is the smallest active pack sealIfDead seals: below it the
// space a compaction would win is not worth a new pack file.
const sealMinSize = 1 << 20

// sealIfDead starts a new active pack when the active one is at least
// sealMinSize and less than half live, so that the compactor, which
// compacts sealed packs only, reclaims it. It runs in the committer (or
// before it starts).
func (p *pack) sealIfDead() error {
	p.mu.Lock()
	pf := p.mu.active
	dead := pf.size >= sealMinSize && pf.live*2 < pf.size
	next := pf.seq + 1
	p.mu.Unlock()
	if !dead {
		return nil
	}
	if err := p.newPack(next); err != nil {
		return err
	}
	p.needRoll = false
	p.log.Info("sealed the active pack, mostly dead, for compaction", zap.String("pack", pf.path), zap.Int64("size", pf.size), zap.Int64("live", pf.live))
	return nil
}

// writeAll writes bufs one after the other at off.
func writeAll(f fsFile, bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

func (p *pack) kickCompactor() {
	select {
	case p.compactq <- struct{}{}:
	default:
	}
}

func (p *pack) close() error {
	close(p.quit)
	p.c.close()
	p.wg.Wait()
	return p.closeFiles()
}

func (p *pack) closeFiles() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, pf := range p.mu.packs {
		errs = append(errs, pf.f.Close())
	}
	return errors.Join(errs...)
}
