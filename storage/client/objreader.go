package client

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/ckptio/ckptio/storage/manifest"
)

// ObjectReader reads one object sequentially, fetching up to ahead blocks in
// parallel ahead of the reader. Close it to stop the fetches.
type ObjectReader struct {
	cancel  context.CancelFunc
	results chan chan fetched
	cur     []byte
	err     error
}

type fetched struct {
	data []byte
	err  error
}

// NewObjectReader returns a reader over blocks (one object; any order).
// ahead <= 0 means DefaultParallel.
func NewObjectReader(ctx context.Context, r *Reader, blocks []manifest.Block, ahead int) (*ObjectReader, error) {
	blocks = append([]manifest.Block(nil), blocks...)
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].Offset < blocks[j].Offset })
	var off int64
	for _, b := range blocks {
		if b.Offset != off {
			return nil, fmt.Errorf("client: object %q has a gap or overlap at offset %d", b.Object, off)
		}
		off += b.Length
	}
	if ahead <= 0 {
		ahead = DefaultParallel
	}
	ctx, cancel := context.WithCancel(ctx)
	o := &ObjectReader{cancel: cancel, results: make(chan chan fetched, ahead)}
	go func() {
		defer close(o.results)
		for _, b := range blocks {
			if b.Length == 0 {
				continue
			}
			ch := make(chan fetched, 1)
			select {
			case o.results <- ch:
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := r.ReadBlock(ctx, b)
				ch <- fetched{data, err}
			}()
		}
	}()
	return o, nil
}

// Read implements io.Reader.
func (o *ObjectReader) Read(p []byte) (int, error) {
	for len(o.cur) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		ch, ok := <-o.results
		if !ok {
			o.err = io.EOF
			return 0, io.EOF
		}
		f := <-ch
		if f.err != nil {
			o.err = f.err
			return 0, f.err
		}
		o.cur = f.data
	}
	n := copy(p, o.cur)
	o.cur = o.cur[n:]
	return n, nil
}

// Close stops outstanding fetches.
func (o *ObjectReader) Close() error {
	o.cancel()
	for ch := range o.results {
		<-ch
	}
	return nil
}
