package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/version"
)

func putCmd(g *globals) *cobra.Command {
	var blockSize, chunking, mode, keyFile string
	var noCompress, newKey bool
	var replicas int
	c := &cobra.Command{
		Use:   "put JOB FILE...",
		Short: "Store files as a new version of JOB and print its version number",
		Long: `Stores the files as one new version of JOB, striped over the live stores.
Names are kept as given and must be relative paths inside the current
directory (they are where 'ckpt get' writes them back). The version is
committed atomically: if anything fails, no version is created.
Prints the version number on stdout.

Files are cut into blocks (fixed-size, or content-defined with
--chunking cdc, so bytes inserted near the start do not change every block
after them); blocks the job's previous version already stored are
referenced, not sent again, and new blocks are lz4-compressed when that
shrinks them. 'ckpt versions' shows what each version added.

With --encrypt-key-file F (or CKPT_ENCRYPT_KEY_FILE) every block is
encrypted before it leaves this machine, with a key derived from the key in
F; 'ckpt get' then needs the same key. Blocks are reused only from a
previous version written with the same key. --new-key creates F first
(docs/security.md, "Client-side encryption").`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := storage.ParseSize(blockSize)
			if err != nil {
				return fmt.Errorf("--block-size: %w", err)
			}
			if chunking == "" {
				chunking = os.Getenv("CKPT_CHUNKING")
			}
			kind, err := chunk.ParseKind(chunking)
			if err != nil {
				return fmt.Errorf("--chunking: %w", err)
			}
			chunker, err := chunk.Options{Kind: kind, Size: int(bs)}.New()
			if err != nil {
				return fmt.Errorf("--block-size: %w", err)
			}
			if replicas == 0 && os.Getenv("CKPT_REPLICAS") != "" {
				if _, err := fmt.Sscan(os.Getenv("CKPT_REPLICAS"), &replicas); err != nil || replicas < 1 {
					return fmt.Errorf("CKPT_REPLICAS=%q: want a positive number of copies", os.Getenv("CKPT_REPLICAS"))
				}
			}
			if mode == "" {
				mode = os.Getenv("CKPT_WRITE_MODE")
			}
			if mode != "" && mode != "pessimistic" && mode != "optimistic" {
				return fmt.Errorf("--mode %q: want pessimistic or optimistic", mode)
			}
			key, err := putKey(keyFile, newKey)
			if err != nil {
				return err
			}
			opts := client.WriterOptions{BlockSize: int(bs), Chunker: chunker, Replicas: replicas, Optimistic: mode == "optimistic"}
			if !noCompress {
				opts.Encode = codec.Encode
			}
			if key != nil {
				opts.Seal = key.Seal
			}
			return put(cmd.Context(), g, args[0], args[1:], opts, key)
		},
	}
	c.Flags().StringVar(&blockSize, "block-size", storage.FormatSize(chunk.DefaultSize), "fixed block size, or average chunk size with --chunking cdc")
	c.Flags().StringVar(&chunking, "chunking", "", "fixed or cdc (default $CKPT_CHUNKING, else fixed)")
	c.Flags().BoolVar(&noCompress, "no-compress", false, "store blocks raw instead of lz4-compressing those that shrink")
	c.Flags().IntVar(&replicas, "replicas", 0, "copies of each block on distinct stores (default $CKPT_REPLICAS, else 2 when 2 stores are live)")
	c.Flags().StringVar(&mode, "mode", "", "pessimistic (commit when every copy is durable) or optimistic (when one is; the manager makes the rest) (default $CKPT_WRITE_MODE, else pessimistic)")
	c.Flags().StringVar(&keyFile, "encrypt-key-file", "", "encrypt blocks with the key in this file (default $CKPT_ENCRYPT_KEY_FILE; none = not encrypted)")
	c.Flags().BoolVar(&newKey, "new-key", false, "create the --encrypt-key-file with a fresh random key first (never replaces a file)")
	return c
}

// putKey returns the key ckpt put encrypts with, nil for none; with
// newKey it makes the key file first.
func putKey(file string, newKey bool) (*crypt.Key, error) {
	if !newKey {
		return crypt.Resolve(file)
	}
	if file == "" {
		file = os.Getenv(crypt.EnvKeyFile)
	}
	if file == "" {
		return nil, errors.New("--new-key needs --encrypt-key-file F (or CKPT_ENCRYPT_KEY_FILE): the file to create")
	}
	k, err := crypt.NewKeyFile(file)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "ckpt: new key %s written to %s; keep a copy: without it nothing encrypted with it can be read\n", k.Fingerprint(), file)
	return k, nil
}

// objectName checks a FILE argument and returns the name it is stored under.
func objectName(arg string) (string, error) {
	clean := filepath.Clean(arg)
	if !filepath.IsLocal(clean) {
		return "", fmt.Errorf("%q is not a relative path inside the current directory; run ckpt from a directory that contains it", arg)
	}
	return filepath.ToSlash(clean), nil
}

func put(ctx context.Context, g *globals, jobName string, files []string, opts client.WriterOptions, key *crypt.Key) error {
	names := make([]string, len(files))
	seen := map[string]bool{}
	for i, f := range files {
		n, err := objectName(f)
		if err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("%q is given twice", f)
		}
		seen[n] = true
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%q is not a regular file", f)
		}
		names[i] = n
	}
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	opts.Logger = s.log
	job := &version.Job{Name: jobName, Catalog: s.mc, Pool: s.pool, Writer: opts, Logger: s.log}
	// Blocks of the previous version are reused only if it holds files
	// and was written with the same key (or none), as the meta says.
	c, err := job.Write(ctx, version.Files, key.AddMeta(nil), func(w *version.Writer) error {
		for i, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				return err
			}
			_, err = w.WriteObject(ctx, names[i], -1, fh)
			fh.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ckpt: %s version %d: %d files, %s, %s sent, %s new, on %d stores\n", jobName, c.Version, len(files),
		storage.FormatSize(c.LogicalBytes), storage.FormatSize(c.SentBytes), storage.FormatSize(c.NewBytes), c.Stores)
	fmt.Println(c.Version)
	return nil
}

func getCmd(g *globals) *cobra.Command {
	return writeOutCmd(g, "get", "Write the files of a version of JOB into DIR", `Writes back the files of one version of JOB (default: the latest) under
DIR, with the names they were put with. Every block is verified against its
hash. Each file is written to a temporary name and renamed when complete, so
a failed get leaves no partial file under its real name. An encrypted
version needs the key it was put with (--encrypt-key-file or
CKPT_ENCRYPT_KEY_FILE).`, true)
}

// writeFile restores one object to path through a temporary file, fsynced
// and renamed into place.
func writeFile(ctx context.Context, r *client.Reader, path string, blocks []manifest.Block) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".ckpt-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var size int64
	for _, b := range blocks {
		if end := b.Offset + b.Length; end > size {
			size = end
		}
	}
	if err := tmp.Truncate(size); err != nil {
		return err
	}
	if err := r.ReadObject(ctx, blocks, tmp); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	return nil
}
