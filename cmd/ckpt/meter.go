package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/cmd/internal/progress"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/tree"
)

// progressFlags is --quiet, taken by the commands that show progress
// (put, get, restore, repair, verify --deep).
type progressFlags struct {
	quiet bool
}

func (p *progressFlags) register(c *cobra.Command) {
	c.Flags().BoolVar(&p.quiet, "quiet", false, "show no progress on stderr (errors and the last line still print); progress is a bar on a terminal, else a line every 5s ($CKPT_PROGRESS_INTERVAL)")
}

// start begins a progress.Meter on stderr for work of total bytes (0:
// not known yet), labelled "put heat" say.
func (p *progressFlags) start(label string, total int64) *progress.Meter {
	opts := progress.Options{}
	if p.quiet {
		opts.Mode = progress.Off
	}
	return progress.Start(label, total, opts)
}

// countingReader is a tree.Reader that tells a Meter of the bytes it
// writes out.
type countingReader struct {
	tree.Reader
	m *progress.Meter
}

func (r countingReader) ReadObject(ctx context.Context, blocks []manifest.Block, w io.WriterAt) error {
	return r.Reader.ReadObject(ctx, blocks, countingWriterAt{w, r.m})
}

func (r countingReader) ReadBlockInto(ctx context.Context, b manifest.Block, dst []byte) error {
	err := r.Reader.ReadBlockInto(ctx, b, dst)
	if err == nil {
		r.m.Add(b.Length)
	}
	return err
}

type countingWriterAt struct {
	w io.WriterAt
	m *progress.Meter
}

func (c countingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	c.m.Add(int64(n))
	return n, err
}
