package version

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/manifest"
)

// Snapshot is a committed version opened for reading: its manifest,
// decoded once, and its encoding, which other processes can parse instead
// of asking the manager again. Read-only and safe for concurrent use.
type Snapshot struct {
	raw []byte
	m   *manifest.Manifest

	once sync.Once
	objs map[objectKey][]int32 // rows of each object, in offset order
}

type objectKey struct {
	rank int32
	name string
}

// Open fetches version v of the job (0 = the latest).
func (j *Job) Open(ctx context.Context, v int64) (*Snapshot, error) {
	raw, n, err := j.Catalog.ManifestBytes(ctx, j.Name, v)
	if err != nil {
		return nil, err
	}
	s, err := ParseSnapshot(raw)
	if err != nil {
		return nil, fmt.Errorf("version: %s version %d: %w", j.Name, n, err)
	}
	if s.m.Version == 0 {
		s.m.Version = n
	}
	return s, nil
}

// ParseSnapshot decodes an encoded manifest (Snapshot.Bytes).
func ParseSnapshot(raw []byte) (*Snapshot, error) {
	m, err := manifest.Unmarshal(raw)
	if err != nil {
		return nil, err
	}
	return &Snapshot{raw: raw, m: m}, nil
}

// Bytes is the encoded manifest.
func (s *Snapshot) Bytes() []byte { return s.raw }

// DropBytes lets the encoded manifest go once nobody needs Bytes any more
// (it was sent to the other readers, or there are none): it is as large
// as the decoded block list, 10 MiB at 4 GiB of 64 KiB blocks. Bytes
// returns nil after. Nothing else changes; nil does nothing.
func (s *Snapshot) DropBytes() {
	if s != nil {
		s.raw = nil
	}
}

// Version is the version's number.
func (s *Snapshot) Version() int64 { return s.m.Version }

// Manifest is the decoded manifest; callers must not change it.
func (s *Snapshot) Manifest() *manifest.Manifest { return s.m }

// Extent is one block of an object, as Extents lists them.
type Extent struct {
	Offset, Length int64
	row            int32
}

// Extents returns the blocks of rank's object name in offset order, and
// false when the version has no such object.
func (s *Snapshot) Extents(rank int32, name string) ([]Extent, bool) {
	s.once.Do(func() {
		s.objs = map[objectKey][]int32{}
		for i, b := range s.m.Blocks {
			k := objectKey{b.Rank, b.Object}
			s.objs[k] = append(s.objs[k], int32(i))
		}
		for _, rows := range s.objs {
			slices.SortFunc(rows, func(a, b int32) int {
				return cmp.Compare(s.m.Blocks[a].Offset, s.m.Blocks[b].Offset)
			})
		}
	})
	rows, ok := s.objs[objectKey{rank, name}]
	if !ok {
		return nil, false
	}
	out := make([]Extent, len(rows))
	for i, r := range rows {
		b := &s.m.Blocks[r]
		out[i] = Extent{Offset: b.Offset, Length: b.Length, row: r}
	}
	return out, true
}

// Layout is what an MPI version records about the job that wrote it.
type Layout struct {
	Ranks   int
	Leaders int
	Regions []string // rank 0's region names, in the order it protected them
}

// AddMeta records l in meta (made if nil) and returns it.
func (l Layout) AddMeta(meta map[string]string) map[string]string {
	if meta == nil {
		meta = map[string]string{}
	}
	meta[catalog.MetaRanks] = strconv.Itoa(l.Ranks)
	meta[catalog.MetaLeaders] = strconv.Itoa(l.Leaders)
	meta[catalog.MetaRegions] = strings.Join(l.Regions, ",")
	return meta
}

// CheckMPI returns nil when the version is an MPI checkpoint written by
// ranks ranks, and otherwise an error that says what to do.
func (s *Snapshot) CheckMPI(ranks int) error {
	m := s.m
	if m.Kind != MPI {
		return fmt.Errorf("%s version %d holds files written by 'ckpt put', not an MPI checkpoint", m.Job, m.Version)
	}
	n, err := strconv.Atoi(m.Meta[catalog.MetaRanks])
	if err != nil {
		return fmt.Errorf("%s version %d does not record its rank count", m.Job, m.Version)
	}
	if n != ranks {
		return fmt.Errorf("%s version %d was written by %d ranks, this job has %d: restart with -np %d, or read each rank's data with a per-rank reader and redistribute it",
			m.Job, m.Version, n, ranks, n)
	}
	return nil
}

// Regions is the version's list of region names, as recorded ("" if none).
func (s *Snapshot) Regions() string { return s.m.Meta[catalog.MetaRegions] }

// ReadParallel is how many blocks a restore reads at once, as a Reader
// does by default.
const ReadParallel = client.DefaultParallel

// Reader reads the blocks of snapshots from the job's stores, verifying
// every one. Safe for concurrent use.
type Reader struct {
	r *client.Reader
}

// NewReader returns a reader over the job's stores with its Reader
// options.
func (j *Job) NewReader() *Reader {
	o := j.Reader
	if o.Dead == nil {
		o.Dead = j.Pool.Dead
	}
	return &Reader{r: client.NewReader(j.Pool.Resolve, o)}
}

// ReadInto reads extent e of s into dst, which holds exactly e.Length
// bytes, from any copy that verifies (client.Reader.ReadBlockInto).
func (r *Reader) ReadInto(ctx context.Context, s *Snapshot, e Extent, dst []byte) error {
	b := s.m.Blocks[e.row]
	if err := r.r.ReadBlockInto(ctx, b, dst); err != nil {
		return fmt.Errorf("rank %d region %s offset %d: %w", b.Rank, b.Object, b.Offset, err)
	}
	return nil
}

// ReadBlockInto reads block b, of exactly len(dst) bytes, into dst from
// any copy that verifies.
func (r *Reader) ReadBlockInto(ctx context.Context, b manifest.Block, dst []byte) error {
	return r.r.ReadBlockInto(ctx, b, dst)
}

// ReadObject reads an object's blocks (in any order) into w at their
// offsets, verifying each, with ReadParallel blocks in flight.
func (r *Reader) ReadObject(ctx context.Context, blocks []manifest.Block, w io.WriterAt) error {
	return r.r.ReadObject(ctx, blocks, w)
}

// OpenObject reads rank's object name of s as a stream.
func (r *Reader) OpenObject(ctx context.Context, s *Snapshot, rank int32, name string) (io.ReadCloser, error) {
	ext, ok := s.Extents(rank, name)
	if !ok {
		return nil, fmt.Errorf("%s version %d has no object %q of rank %d (ranks: %s, regions: %s)",
			s.m.Job, s.m.Version, name, rank, s.m.Meta[catalog.MetaRanks], s.m.Meta[catalog.MetaRegions])
	}
	blocks := make([]manifest.Block, len(ext))
	for i, e := range ext {
		blocks[i] = s.m.Blocks[e.row]
	}
	return client.NewObjectReader(ctx, r.r, blocks, 0)
}

// DegradedSummary says in one line which stores' copies were passed over
// and how many blocks were read from another copy instead; "" when none
// (client.Reader.DegradedSummary).
func (r *Reader) DegradedSummary() string { return r.r.DegradedSummary() }

// Corrupt lists the copies read so far that came back not matching their
// keys (client.Reader.Corrupt).
func (r *Reader) Corrupt() []catalog.CorruptCopy { return r.r.Corrupt() }

// CorruptReporter is a Catalog that takes reports of corrupt copies
// (catalog.Client does).
type CorruptReporter interface {
	ReportCorrupt(ctx context.Context, job string, copies []catalog.CorruptCopy) (catalog.CorruptReport, error)
}

// ReportCorrupt reports the corrupt copies r met to the manager, which
// reads them back, drops the corrupt ones and queues a repair
// (docs/availability.md, "Corrupt copies"); it logs what came of it. A
// Catalog that takes no reports, or a report that fails, is logged only:
// the stores drop what they serve corrupt and repair replaces it later.
func (j *Job) ReportCorrupt(ctx context.Context, r *Reader) {
	copies := r.Corrupt()
	if len(copies) == 0 {
		return
	}
	rc, ok := j.Catalog.(CorruptReporter)
	if !ok {
		j.log().Warn("copies came back corrupt; this catalog takes no reports", zap.Int("copies", len(copies)))
		return
	}
	rep, err := rc.ReportCorrupt(ctx, j.Name, copies)
	if err != nil {
		j.log().Warn("copies came back corrupt; reporting them to the manager failed", zap.Int("copies", len(copies)), zap.Error(err))
		return
	}
	j.log().Warn("copies came back corrupt and were reported to the manager", zap.Int("copies", len(copies)),
		zap.Int("dropped", rep.Dropped), zap.Int("intact", rep.Intact), zap.Bool("repair_queued", rep.RepairQueued))
}
