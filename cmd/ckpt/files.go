package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/cmd/internal/progress"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/tree"
	"github.com/ckptio/ckptio/storage/version"
)

func putCmd(g *globals) *cobra.Command {
	var blockSize, chunking, mode, keyFile, redundancy string
	var noCompress, newKey, forceRead, asJSON bool
	var replicas int
	var pf progressFlags
	c := &cobra.Command{
		Use:   "put JOB PATH...",
		Short: "Store files and directory trees as a new version of JOB and print its version number",
		Long: `Stores the files, directories (recursively) and symlinks as one new version
of JOB, striped over the live stores, with their modes, mtimes and symlink
targets. Symlinks are stored as symlinks, never followed; empty directories
are kept; special files (sockets, devices, FIFOs) are skipped with a
warning. Names are kept as given and must be relative paths inside the
current directory (they are where 'ckpt get' writes them back); "." puts
what the current directory holds. The local cluster's own directory
(CKPT_HOME) is never put, wherever it lies in the tree. The
version is committed atomically: if anything fails, no version is created.
Prints the version number on stdout.

A file whose size, mtime, ctime, inode and mode match the job's previous
version is referenced without being read (--force-read reads every file).
Other files are cut into blocks (fixed-size, or content-defined with
--chunking cdc, so bytes inserted near the start do not change every block
after them); blocks the previous version already stored are referenced,
not sent again, so a file that only grew sends only its new blocks; new
blocks are lz4-compressed when that shrinks them. The last line says how
many files were new, changed and unchanged. 'ckpt versions' shows what
each version added, 'ckpt diff' what changed between two.

With --redundancy rs:K+M (or CKPT_REDUNDANCY) each new block is
Reed-Solomon coded instead of copied: its stored bytes are cut into K data
and M parity shards on K+M distinct stores, any K of which read it back,
for (K+M)/K of its size on disk (rs:4+2: 1.5×, and any 2 stores may be
lost). It needs at least K+M live stores (docs/availability.md, "Erasure
coding").

With --encrypt-key-file F (or CKPT_ENCRYPT_KEY_FILE) every block is
encrypted before it leaves this machine, with a key derived from the key in
F; 'ckpt get' then needs the same key. Blocks are reused only from a
previous version written with the same key. --new-key creates F first
(docs/security.md, "Client-side encryption").

Progress goes to stderr: a bar on a terminal, else a line every few
seconds; --quiet silences it. The last line ends with the rate of the
bytes read (MB/s).`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := parseBlockSize(blockSize)
			if err != nil {
				return err
			}
			if chunking == "" {
				chunking = os.Getenv("CKPT_CHUNKING")
			}
			kind, err := chunk.ParseKind(chunking)
			if err != nil {
				return cli.Usagef("--chunking: %w", err)
			}
			chunker, err := chunk.Options{Kind: kind, Size: int(bs)}.New()
			if err != nil {
				return cli.Usagef("--block-size: %w", err)
			}
			replicas, optimistic, sc, err := writeMode(replicas, cmd.Flags().Changed("replicas"), mode, redundancy)
			if err != nil {
				return err
			}
			key, err := putKey(keyFile, newKey)
			if err != nil {
				return err
			}
			opts := client.WriterOptions{BlockSize: int(bs), Chunker: chunker, Replicas: replicas, Optimistic: optimistic, Redundancy: sc}
			if !noCompress {
				opts.Encode = codec.Encode
			}
			if key != nil {
				opts.Seal = key.Seal
			}
			return put(cmd.Context(), g, args[0], args[1:], opts, key, forceRead, asJSON, &pf)
		},
	}
	c.Flags().StringVar(&blockSize, "block-size", storage.FormatSize(chunk.DefaultSize), "fixed block size, or average chunk size with --chunking cdc")
	c.Flags().StringVar(&chunking, "chunking", "", "fixed or cdc (default $CKPT_CHUNKING, else fixed)")
	c.Flags().BoolVar(&noCompress, "no-compress", false, "store blocks raw instead of lz4-compressing those that shrink")
	c.Flags().IntVar(&replicas, "replicas", 0, "copies of each block on distinct stores (default $CKPT_REPLICAS, else 2 when 2 stores are live)")
	c.Flags().StringVar(&redundancy, "redundancy", "", redundancyUsage)
	c.Flags().StringVar(&mode, "mode", "", "pessimistic (commit when every copy is durable) or optimistic (when one is; the manager makes the rest) (default $CKPT_WRITE_MODE, else pessimistic)")
	c.Flags().StringVar(&keyFile, "encrypt-key-file", "", "encrypt blocks with the key in this file (default $CKPT_ENCRYPT_KEY_FILE; none = not encrypted)")
	c.Flags().BoolVar(&newKey, "new-key", false, "create the --encrypt-key-file with a fresh random key first (never replaces a file)")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON summary (ckptio.transfer/1) instead of the version number")
	c.Flags().BoolVar(&forceRead, "force-read", false, "read every file, even those whose size, mtime, ctime and inode match the previous version")
	pf.register(c)
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
		return nil, cli.Usagef("--new-key needs --encrypt-key-file F (or CKPT_ENCRYPT_KEY_FILE): the file to create")
	}
	k, err := crypt.NewKeyFile(file)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "ckpt: new key %s written to %s; keep a copy: without it nothing encrypted with it can be read\n", k.Fingerprint(), file)
	return k, nil
}

// objectName checks a PATH argument and returns the name it is stored under.
func objectName(arg string) (string, error) {
	clean := filepath.Clean(arg)
	if !filepath.IsLocal(clean) {
		return "", cli.Usagef("%q is not a relative path inside the current directory; run ckpt from a directory that contains it", arg)
	}
	name := filepath.ToSlash(clean)
	if err := manifest.CheckPath(name); err != nil {
		return "", fmt.Errorf("%q: %w", arg, err)
	}
	return name, nil
}

func put(ctx context.Context, g *globals, jobName string, args []string, opts client.WriterOptions, key *crypt.Key, forceRead, asJSON bool, pf *progressFlags) error {
	start := time.Now()
	// "." is what the current directory holds.
	for i, a := range args {
		if filepath.Clean(a) != "." {
			continue
		}
		des, err := os.ReadDir(".")
		if err != nil {
			return err
		}
		var kids []string
		for _, de := range des {
			kids = append(kids, de.Name())
		}
		if len(kids) == 0 {
			return errors.New("the current directory is empty: nothing to put")
		}
		args = slices.Concat(args[:i], kids, args[i+1:])
		break
	}
	names := make([]string, len(args))
	seen := map[string]bool{}
	for i, a := range args {
		n, err := objectName(a)
		if err != nil {
			return err
		}
		if seen[n] {
			return cli.Usagef("%q is given twice", a)
		}
		seen[n] = true
		if _, err := os.Lstat(a); err != nil {
			return err
		}
		names[i] = n
	}
	for _, n := range names {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if seen[d] {
				return cli.Usagef("%q is inside %q, which is given too; give it once", n, d)
			}
		}
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
	meta := key.AddMeta(nil)
	txn, err := job.Begin(ctx, version.Files, meta)
	if err != nil {
		return err
	}
	defer txn.Abort(context.WithoutCancel(ctx)) // unless committed
	var prevTree []manifest.File
	if p := txn.Previous(); p != nil {
		snap, err := version.ParseSnapshot(p.Bytes())
		if err != nil {
			return err
		}
		prevTree = snap.Manifest().Tree(-1)
	}
	var exclude []string
	if g.manager == "" {
		exclude = []string{cluster.HomeDir(g.home)} // a put of the tree the local cluster lives in
	}
	meter := pf.start("put "+jobName, 0)
	defer meter.Stop()
	scan, err := tree.ScanPaths(".", names, prevTree, tree.Options{Rank: -1, ForceRead: forceRead, Exclude: exclude, Warn: func(p, reason string) {
		fmt.Fprintf(os.Stderr, "ckpt: warning: %s %s\n", p, reason)
	}, Progress: meter.Add})
	if err != nil {
		return err
	}
	counts := scan.Counts()
	meter.SetTotal(counts.ReadBytes)
	// The pre-check: the bytes read, times the copies, must fit (an
	// upper bound: compression and reuse only lower what is stored).
	w, err := job.NewWriter(ctx, txn.Previous(), version.Hints{Bytes: counts.ReadBytes})
	if err != nil {
		return err
	}
	werr := scan.Write(ctx, w)
	part, err := w.Close(ctx)
	if werr == nil {
		werr = err
	}
	if werr != nil {
		// Nothing is committed: delete the blocks this put created
		// that nothing else has come to rely on.
		if _, derr := txn.AbortDiscarding(context.WithoutCancel(ctx), w); derr != nil {
			fmt.Fprintf(os.Stderr, "ckpt: warning: %v\n", derr)
		}
		return werr
	}
	c, err := txn.Commit(ctx, meta, part)
	if err != nil {
		return err
	}
	took := meter.Stop()
	fmt.Fprintf(os.Stderr, "ckpt: %s version %d: %s; %s, %s read, %s sent, %s new, on %d stores, in %s, %s\n", jobName, c.Version, counts,
		storage.FormatSize(c.LogicalBytes), storage.FormatSize(counts.ReadBytes), storage.FormatSize(c.SentBytes), storage.FormatSize(c.NewBytes), c.Stores,
		took.Took(), progress.Rate(c.LogicalBytes, took.Elapsed))
	if asJSON {
		t := newTransfer("put", jobName, c.Version, counts.New+counts.Changed+counts.Unchanged+counts.Dirs+counts.Symlinks, c.LogicalBytes, start)
		t.NewBytes, t.SentBytes = &c.NewBytes, &c.SentBytes
		return printJSON(t)
	}
	fmt.Println(c.Version)
	return nil
}

func getCmd(g *globals) *cobra.Command {
	return writeOutCmd(g, "get", "Write the files of a version of JOB into DIR", `Writes back the files, directories and symlinks of one version of JOB
(default: the latest) under DIR, with the names they were put with, their
modes (setuid, setgid and sticky included) and mtimes. Every block is
verified against its hash. Nothing is written outside DIR: names with
"..", absolute names and symlinks on the way out are refused; symlinks are
made last. Each file is written to a temporary name, fsynced and renamed
when complete, so a failed get leaves no partial file under its real name.
Existing files are not replaced unless --overwrite is given; without it,
get checks every name first and writes nothing if one exists. An
encrypted version needs the key it was put with (--encrypt-key-file or
CKPT_ENCRYPT_KEY_FILE).`, true)
}
