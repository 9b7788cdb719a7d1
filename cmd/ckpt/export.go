package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
)

func exportCmd(g *globals) *cobra.Command {
	var ver int64
	var file string
	var overwrite bool
	c := &cobra.Command{
		Use:   "export JOB --manifest FILE.arrow [--version N] [--overwrite]",
		Short: "Write a version's manifest as an Arrow IPC file, for pyarrow, DuckDB and other Arrow tools",
		Long: `Writes the manifest of one version of JOB (default: the latest) to FILE as
an Arrow IPC file (the random-access "file" format, also read as Feather
v2): one row per block, with the columns of storage/manifest/doc.go
(object, rank, offset, length, hash, key, stored_length, codec, stores,
type, mode, mtime_ns, ctime_ns, inode, target) and the version-level
fields as schema metadata (ckptio.job, ckptio.version, ...). The object
and type columns are plain utf8 rather than the stored manifest's
per-batch dictionaries, which the file format cannot hold. No block is
read; the manifest is checked before it is written.

FILE is written to a temporary name beside it, fsynced and renamed, so it
is never seen half-written. An existing FILE is refused unless
--overwrite. docs/export.md shows how to read it with pyarrow and DuckDB.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("--manifest FILE is required: the Arrow file to write")
			}
			if ver < 0 {
				return errors.New("--version must be positive")
			}
			return export(cmd.Context(), g, args[0], ver, file, overwrite)
		},
	}
	c.Flags().Int64Var(&ver, "version", 0, "version whose manifest to export (default: latest)")
	c.Flags().StringVar(&file, "manifest", "", "Arrow IPC file to write the manifest to (required)")
	c.Flags().BoolVar(&overwrite, "overwrite", false, "replace FILE if it exists")
	return c
}

func export(ctx context.Context, g *globals, job string, ver int64, file string, overwrite bool) error {
	if !overwrite {
		if _, err := os.Lstat(file); err == nil {
			return fmt.Errorf("%s exists; choose another --manifest or pass --overwrite to replace it", file)
		}
	}
	if fi, err := os.Stat(filepath.Dir(file)); err != nil || !fi.IsDir() {
		return fmt.Errorf("--manifest %s: directory %s does not exist; create it first", file, filepath.Dir(file))
	}
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	raw, v, err := s.mc.ManifestBytes(ctx, job, ver)
	if err != nil {
		return err
	}
	// The bounded, validating decoder reads it first: Arrow's own reader
	// below trusts its input.
	m, err := manifest.Unmarshal(raw)
	if err != nil {
		return fmt.Errorf("%s version %d: %w", job, v, err)
	}
	var size int64
	err = writeAtomic(file, overwrite, func(f *os.File) error {
		if err := arrowFile(f, raw); err != nil {
			return fmt.Errorf("%s version %d: converting the manifest to an Arrow file: %w", job, v, err)
		}
		size, err = f.Seek(0, io.SeekEnd)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ckpt: %s version %d: manifest of %d blocks written to %s (Arrow IPC file, %s)\n",
		job, v, len(m.Blocks), file, storage.FormatSize(size))
	return nil
}

// arrowFile rewrites a manifest's Arrow IPC stream as an Arrow IPC file,
// with the dictionary columns (object, type) as plain utf8: a file holds
// one dictionary per column, and the manifest replaces its dictionaries
// at every batch.
func arrowFile(w io.WriteSeeker, stream []byte) error {
	mem := memory.NewGoAllocator()
	rd, err := ipc.NewReader(bytes.NewReader(stream), ipc.WithAllocator(mem))
	if err != nil {
		return err
	}
	defer rd.Release()
	in := rd.Schema()
	fields := make([]arrow.Field, len(in.Fields()))
	for i, f := range in.Fields() {
		if _, ok := f.Type.(*arrow.DictionaryType); ok {
			f.Type = arrow.BinaryTypes.String
		}
		fields[i] = f
	}
	md := in.Metadata()
	schema := arrow.NewSchema(fields, &md)
	fw, err := ipc.NewFileWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		return err
	}
	for rd.Next() {
		rec := rd.Record()
		cols := make([]arrow.Array, rec.NumCols())
		var made []arrow.Array
		for i, col := range rec.Columns() {
			cols[i] = col
			if d, ok := col.(*array.Dictionary); ok {
				cols[i] = plainStrings(mem, d)
				made = append(made, cols[i])
			}
		}
		out := array.NewRecord(schema, cols, rec.NumRows())
		err := fw.Write(out)
		out.Release()
		for _, a := range made {
			a.Release()
		}
		if err != nil {
			return err
		}
	}
	if err := rd.Err(); err != nil {
		return err
	}
	return fw.Close()
}

// plainStrings is a dictionary<utf8> column as a utf8 one.
func plainStrings(mem memory.Allocator, d *array.Dictionary) arrow.Array {
	dict := d.Dictionary().(*array.String)
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for i := 0; i < d.Len(); i++ {
		if d.IsNull(i) {
			b.AppendNull()
			continue
		}
		b.Append(dict.Value(d.GetValueIndex(i)))
	}
	return b.NewArray()
}

// writeAtomic makes file hold what write writes: to a temporary name in
// its directory, fsynced, then renamed over file (overwrite) or linked to
// it (which fails if it exists meanwhile), and the directory fsynced.
func writeAtomic(file string, overwrite bool, write func(*os.File) error) error {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone once renamed; else a leftover
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if overwrite {
		err = os.Rename(tmp.Name(), file)
	} else if err = os.Link(tmp.Name(), file); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; choose another --manifest or pass --overwrite to replace it", file)
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
