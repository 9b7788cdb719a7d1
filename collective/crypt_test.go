package collective_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/version"
	"github.com/ckptio/ckptio/storage/version/versiontest"
)

// TestReuseOnlyUnderTheSameKey: a checkpoint reuses the previous version's
// blocks only when both were written with the same key (or none), and every
// version restores with its own key.
func TestReuseOnlyUnderTheSameKey(t *testing.T) {
	ctx := context.Background()
	cl := versiontest.New(3)
	k1, _ := crypt.NewKey()
	k2, _ := crypt.NewKey()
	err := local.RunWith(4, local.Options{}, func(c collective.Comm) error {
		s, err := collective.NewSession(c, collective.Options{RanksPerLeader: 2, BlockSize: 4096})
		if err != nil {
			return err
		}
		defer s.Close()
		regs := regionsFor(c.Rank(), 1)
		for i, k := range []*crypt.Key{k1, k1, k2, nil, k2} {
			b := &version.Job{Name: "j", Catalog: cl, Pool: cl.Pool(),
				Writer: client.WriterOptions{Encode: codec.Encode}, Reader: client.ReaderOptions{Decode: k.Decode}}
			if k != nil {
				b.Writer.Seal = k.Seal
			}
			res, err := s.Checkpoint(ctx, b, regs, k.AddMeta(map[string]string{"step": "1"}))
			if err != nil {
				return err
			}
			if reused := res.SentBytes == 0; reused != (i == 1) {
				return fmt.Errorf("version %d (%v): sent %d bytes", i+1, k, res.SentBytes)
			}
			if _, err := s.Restore(ctx, b, 0, clone(regs)); err != nil {
				return fmt.Errorf("restore of version %d: %w", i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
