package version

import (
	"context"

	"github.com/ckptio/ckptio/storage/manifest"
)

// Confirm exposes Writer.confirm to the tests.
func Confirm(ctx context.Context, w *Writer, rows []int32) ([][]string, error) {
	return w.confirm(ctx, rows)
}

// PreviousBlocks exposes the rows of a Previous version to the tests.
func PreviousBlocks(p *Previous) []manifest.Block { return p.m.Blocks }
