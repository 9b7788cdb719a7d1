package chunk

import "io"

// Reader cuts a stream into chunks with the boundaries Cut would give for
// the whole stream held in memory. It is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	c   Chunker
	buf []byte
	lo  int   // start of the bytes not yet returned
	hi  int   // end of the bytes read
	eof bool  // r returned io.EOF
	err error // sticky

	zeroReads int // consecutive (0, nil) reads
}

// NewReader returns a Reader that cuts r with c. It buffers 64*c.Max()
// bytes, at least 2*c.Max() and at most 4 MiB, so that moving the unread
// tail to the front of the buffer (under Max bytes) is rare next to reading.
func NewReader(r io.Reader, c Chunker) *Reader {
	n := max(2*c.Max(), min(64*c.Max(), 4<<20))
	return &Reader{r: r, c: c, buf: make([]byte, n)}
}

// Next returns the next chunk. The slice belongs to the Reader and stays
// valid until the next call. At the end of the stream Next returns nil and
// io.EOF; after any other error it returns that error from then on.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.fill(); err != nil {
		r.err = err
		return nil, err
	}
	if r.lo == r.hi {
		r.err = io.EOF
		return nil, io.EOF
	}
	n := r.c.First(r.buf[r.lo:r.hi])
	chunk := r.buf[r.lo : r.lo+n : r.lo+n]
	r.lo += n
	return chunk, nil
}

// fill reads until Max bytes are buffered past lo or the stream ends.
func (r *Reader) fill() error {
	want := r.c.Max()
	if r.eof || r.hi-r.lo >= want {
		return nil
	}
	if len(r.buf)-r.lo < want {
		r.hi = copy(r.buf, r.buf[r.lo:r.hi])
		r.lo = 0
	}
	for r.hi-r.lo < want {
		n, err := r.r.Read(r.buf[r.hi:])
		r.hi += n
		if err == io.EOF {
			r.eof = true
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			// A reader that returns (0, nil) over and over would spin
			// here; io.ReadFull tolerates it, and so do we, a bounded
			// number of times.
			if r.zeroReads++; r.zeroReads > 100 {
				return io.ErrNoProgress
			}
			continue
		}
		r.zeroReads = 0
	}
	return nil
}
