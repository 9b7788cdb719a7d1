package collective

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ckptio/ckptio/storage"
)

// bcastBytes sends data from root to every rank of c (length first).
func bcastBytes(c Comm, root int, data []byte) ([]byte, error) {
	n := make([]byte, 8)
	if c.Rank() == root {
		binary.LittleEndian.PutUint64(n, uint64(len(data)))
	}
	if err := c.Bcast(n, root); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint64(n)
	if size > 1<<40 {
		return nil, fmt.Errorf("collective: broadcast of %d bytes is not plausible", size)
	}
	buf := data
	if c.Rank() != root {
		buf = make([]byte, size)
	}
	if err := c.Bcast(buf, root); err != nil {
		return nil, err
	}
	return buf, nil
}

// gatherBytes collects every rank's data at root, in rank order; other
// ranks get nil.
func gatherBytes(c Comm, root int, data []byte) ([][]byte, error) {
	size := c.Size()
	mine := make([]byte, 8)
	binary.LittleEndian.PutUint64(mine, uint64(len(data)))
	var lens []byte
	var counts, displs []int
	if c.Rank() == root {
		lens = make([]byte, 8*size)
		counts, displs = make([]int, size), make([]int, size)
		for i := range counts {
			counts[i], displs[i] = 8, 8*i
		}
	}
	if err := c.Gatherv(mine, lens, counts, displs, root); err != nil {
		return nil, err
	}
	var recv []byte
	if c.Rank() == root {
		total := 0
		for i := range counts {
			counts[i] = int(binary.LittleEndian.Uint64(lens[8*i:]))
			displs[i] = total
			total += counts[i]
		}
		recv = make([]byte, total)
	}
	if err := c.Gatherv(data, recv, counts, displs, root); err != nil {
		return nil, err
	}
	if c.Rank() != root {
		return nil, nil
	}
	out := make([][]byte, size)
	for i := range out {
		out[i] = recv[displs[i] : displs[i]+counts[i]]
	}
	return out, nil
}

// scatterBytes sends parts[i] from root to rank i.
func scatterBytes(c Comm, root int, parts [][]byte) ([]byte, error) {
	size := c.Size()
	var lens, send []byte
	var counts, displs []int
	if c.Rank() == root {
		lens = make([]byte, 8*size)
		counts, displs = make([]int, size), make([]int, size)
		for i := range counts {
			binary.LittleEndian.PutUint64(lens[8*i:], uint64(len(parts[i])))
			counts[i], displs[i] = 8, 8*i
		}
	}
	mine := make([]byte, 8)
	if err := c.Scatterv(lens, counts, displs, mine, root); err != nil {
		return nil, err
	}
	if c.Rank() == root {
		total := 0
		for i, p := range parts {
			counts[i], displs[i] = len(p), total
			total += len(p)
		}
		send = make([]byte, 0, total)
		for _, p := range parts {
			send = append(send, p...)
		}
	}
	recv := make([]byte, binary.LittleEndian.Uint64(mine))
	if err := c.Scatterv(send, counts, displs, recv, root); err != nil {
		return nil, err
	}
	return recv, nil
}

// agree combines every rank's outcome: it returns nil on all ranks when
// every rank passed nil, and on all ranks the same error naming each failed
// rank otherwise.
func agree(world Comm, local error) error {
	msg := ""
	if local != nil {
		msg = local.Error()
		if msg == "" {
			msg = "failed"
		}
	}
	all, err := gatherBytes(world, 0, []byte(msg))
	if err != nil {
		return fmt.Errorf("collective: agreeing on the outcome: %w", err)
	}
	var combined string
	if world.Rank() == 0 {
		var parts []string
		for r, m := range all {
			if len(m) > 0 {
				parts = append(parts, fmt.Sprintf("rank %d: %s", r, m))
			}
		}
		if len(parts) > 4 {
			parts = append(parts[:4], fmt.Sprintf("and %d more ranks", len(parts)-4))
		}
		combined = strings.Join(parts, "; ")
	}
	out, err := bcastBytes(world, 0, []byte(combined))
	if err != nil {
		return fmt.Errorf("collective: agreeing on the outcome: %w", err)
	}
	if len(out) == 0 {
		return nil
	}
	if local != nil {
		return &AgreedError{Msg: string(out), Local: local}
	}
	return &AgreedError{Msg: string(out)}
}

// AgreedError is the outcome every rank returns when some rank failed. Msg
// names each failed rank and its cause; Local is this rank's own error, if
// it failed.
type AgreedError struct {
	Msg   string
	Local error
}

func (e *AgreedError) Error() string { return e.Msg }
func (e *AgreedError) Unwrap() error { return e.Local }

// regionMeta is what a rank tells its leader about its protected regions.
type regionMeta struct {
	worldRank int
	names     []string
	sizes     []int64
	segs      []segment // with hashes; offsets follow from the order
}

// encodeMeta describes this rank's regions and, for a checkpoint, the
// segments it cut them into with their hashes.
func encodeMeta(worldRank int, regions []Region, segs []segment) []byte {
	b := binary.AppendUvarint(nil, uint64(worldRank))
	b = binary.AppendUvarint(b, uint64(len(regions)))
	for _, r := range regions {
		b = binary.AppendUvarint(b, uint64(len(r.Name)))
		b = append(b, r.Name...)
		b = binary.AppendUvarint(b, uint64(len(r.Data)))
	}
	b = binary.AppendUvarint(b, uint64(len(segs)))
	for _, sg := range segs {
		b = binary.AppendUvarint(b, uint64(sg.region))
		b = binary.AppendUvarint(b, uint64(sg.len))
		b = append(b, sg.hash[:]...)
	}
	return b
}

var errBadMeta = errors.New("collective: malformed region metadata from a group member")

func decodeMeta(b []byte) (regionMeta, error) {
	var m regionMeta
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errBadMeta
		}
		b = b[n:]
		return v, nil
	}
	r, err := next()
	if err != nil {
		return m, err
	}
	m.worldRank = int(r)
	n, err := next()
	if err != nil || n > uint64(len(b)) {
		return m, errBadMeta
	}
	for i := uint64(0); i < n; i++ {
		l, err := next()
		if err != nil || l > uint64(len(b)) {
			return m, errBadMeta
		}
		m.names = append(m.names, string(b[:l]))
		b = b[l:]
		sz, err := next()
		if err != nil {
			return m, err
		}
		m.sizes = append(m.sizes, int64(sz))
	}
	ns, err := next()
	if err != nil || ns > uint64(len(b)) {
		return m, errBadMeta
	}
	offs := make([]int64, len(m.sizes))
	// Each segment takes at least two bytes and a hash: a count the
	// frame cannot hold fails below, and allocates no more than it holds.
	m.segs = make([]segment, 0, min(ns, uint64(len(b)/(2+storage.HashSize))))
	for i := uint64(0); i < ns; i++ {
		region, err := next()
		if err != nil || region >= uint64(len(m.sizes)) {
			return m, errBadMeta
		}
		l, err := next()
		if err != nil || len(b) < storage.HashSize {
			return m, errBadMeta
		}
		sg := segment{region: int(region), off: offs[region], len: int64(l)}
		copy(sg.hash[:], b)
		b = b[storage.HashSize:]
		offs[region] += int64(l)
		if offs[region] > m.sizes[region] {
			return m, errBadMeta
		}
		m.segs = append(m.segs, sg)
	}
	return m, nil
}

func encodeInt64s(v []int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

func decodeInt64s(b []byte) []int64 {
	v := make([]int64, len(b)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v
}

// Share runs f on rank 0 of c and gives its result to every rank: the same
// bytes, or an error with the same message. Collective over c.
func Share(c Comm, f func() ([]byte, error)) ([]byte, error) {
	var b []byte
	if c.Rank() == 0 {
		data, err := f()
		if err != nil {
			b = append([]byte{1}, err.Error()...)
		} else {
			b = append([]byte{0}, data...)
		}
		out, berr := bcastBytes(c, 0, b)
		if berr != nil {
			return nil, berr
		}
		if err != nil {
			return nil, err
		}
		return out[1:], nil
	}
	out, err := bcastBytes(c, 0, nil)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("collective: empty broadcast")
	}
	if out[0] == 1 {
		return nil, errors.New(string(out[1:]))
	}
	return out[1:], nil
}

// World returns the session's own duplicate of the world communicator.
func (s *Session) World() Comm { return s.world }
