package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/chunk"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/codec"
	"github.com/ckptio/ckptio/storage/crypt"
	"github.com/ckptio/ckptio/storage/erasure"
	"github.com/ckptio/ckptio/storage/mount"
	"github.com/ckptio/ckptio/storage/version"
)

func mountCmd(g *globals) *cobra.Command {
	var o struct {
		async, noCompress, allowOther, debug bool
		spool, blockSize, mode, keyFile      string
		readAhead, cpuProfile, redundancy    string
		replicas                             int
		timeout                              time.Duration
	}
	c := &cobra.Command{
		Use:   "mount JOB DIR",
		Short: "Serve JOB as a file system on DIR: each file closed there is a new version",
		Long: `Mounts JOB on DIR (an existing directory) and serves it until
'ckpt umount DIR', SIGTERM or Ctrl-C. It prints "mounted JOB on DIR" on
stdout once DIR is ready.

DIR holds the job's files as its latest version has them. Programs create,
write, rename and remove files and directories there with ordinary calls;
each close of a file written (and each fsync) commits a new version of JOB
holding the whole tree at that moment, and returns once it is committed
(with --async: at once, the commit runs in the background and an error is
reported by the next operation and by the unmount). Sequential writes
stream to the stores as they arrive; writes before the end of what was
streamed (a header patched at the end, pwrite, truncate) go to a spool
file under --spool until the close. Blocks the job already stores are
referenced, not sent again.

DIR/versions/N holds every committed version read-only (EROFS on writes),
and DIR/latest links to the newest: restart a program from
DIR/latest/checkpoint.dat. docs/mount.md has the rules.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := parseBlockSize(o.blockSize)
			if err != nil {
				return err
			}
			ra, err := storage.ParseSize(o.readAhead)
			if err != nil {
				return cli.Usagef("--readahead: %v", err)
			}
			replicas, optimistic, sc, err := writeMode(o.replicas, cmd.Flags().Changed("replicas"), o.mode, o.redundancy)
			if err != nil {
				return err
			}
			key, err := crypt.Resolve(o.keyFile)
			if err != nil {
				return err
			}
			wo := client.WriterOptions{BlockSize: int(bs), Replicas: replicas, Optimistic: optimistic, Redundancy: sc}
			if !o.noCompress {
				wo.Encode = codec.Encode
			}
			if key != nil {
				wo.Seal = key.Seal
			}
			spool := o.spool
			if spool == "" {
				spool = defaultSpool()
			}
			mo := mount.Options{Meta: key.AddMeta(nil), Spool: spool, Async: o.async, Timeout: o.timeout,
				ReadAhead: ra, AllowOther: o.allowOther, Debug: o.debug}
			if o.cpuProfile != "" {
				stop, err := cli.StartCPUProfile(o.cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer stop()
			}
			return runMount(cmd.Context(), g, args[0], args[1], wo, key, mo)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.async, "async", false, "close and fsync return at once; commits run in the background (errors: next operation, unmount)")
	f.StringVar(&o.spool, "spool", "", "directory for spool files of files written out of order (default $CKPT_HOME/spool, else the system's temporary directory)")
	f.DurationVar(&o.timeout, "timeout", mount.DefaultTimeout, "bound on each commit, block read and wait for an unreachable manager; past it the call fails with EIO")
	f.StringVar(&o.blockSize, "block-size", storage.FormatSize(chunk.DefaultSize), "size of the blocks files are cut into")
	f.StringVar(&o.readAhead, "readahead", storage.FormatSize(mount.DefaultReadAhead), "bytes read ahead of a sequential reader, per open file")
	f.IntVar(&o.replicas, "replicas", 0, "copies of each block on distinct stores (default $CKPT_REPLICAS, else 2 when 2 stores are live)")
	f.StringVar(&o.redundancy, "redundancy", "", redundancyUsage)
	f.StringVar(&o.mode, "mode", "", "pessimistic (a version commits when every copy is durable) or optimistic (when one is) (default $CKPT_WRITE_MODE, else pessimistic)")
	f.BoolVar(&o.noCompress, "no-compress", false, "store blocks raw instead of lz4-compressing those that shrink")
	f.StringVar(&o.keyFile, "encrypt-key-file", "", "encrypt blocks with the key in this file (default $CKPT_ENCRYPT_KEY_FILE; none = not encrypted)")
	f.BoolVar(&o.allowOther, "allow-other", false, "let other users use the mount (needs user_allow_other in /etc/fuse.conf unless root)")
	f.BoolVar(&o.debug, "debug-fuse", false, "log every FUSE request")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file until the mount stops")
	return c
}

// parseBlockSize reads --block-size: 1 byte to storage.MaxBlockSize, or
// a usage error.
func parseBlockSize(flag string) (int64, error) {
	bs, err := storage.ParseSize(flag)
	if err != nil {
		return 0, cli.Usagef("--block-size: %w", err)
	}
	if bs <= 0 || bs > storage.MaxBlockSize {
		return 0, cli.Usagef("--block-size %s: want 1 byte to %s", flag, storage.FormatSize(storage.MaxBlockSize))
	}
	return bs, nil
}

// redundancyUsage is the help of --redundancy.
const redundancyUsage = "erasure-code new blocks as rs:K+M (K data + M parity shards on K+M distinct stores; any K read a block) instead of copying them (default $CKPT_REDUNDANCY, else replicas)"

// writeMode resolves --replicas, --mode and --redundancy with their
// environment defaults (CKPT_REPLICAS, CKPT_WRITE_MODE, CKPT_REDUNDANCY),
// as 'ckpt put' and 'ckpt mount' share them; given says --replicas was
// on the command line (0 then is refused, not the default). A flag given beats the other
// way's environment variable; asking for both replicas and an erasure
// code, or an optimistic erasure-coded write, is a usage error.
func writeMode(replicas int, given bool, mode, redundancy string) (int, bool, erasure.Scheme, error) {
	var none erasure.Scheme
	if replicas < 0 || given && replicas == 0 {
		return 0, false, none, cli.Usagef("--replicas %d: want a positive number of copies", replicas)
	}
	if redundancy == "" && replicas == 0 {
		redundancy = os.Getenv("CKPT_REDUNDANCY")
	}
	var sc erasure.Scheme
	if redundancy != "" && redundancy != "none" {
		var err error
		if sc, err = erasure.Parse(redundancy); err != nil {
			return 0, false, none, cli.Usagef("redundancy: %v", err)
		}
	}
	if replicas == 0 && sc.IsZero() && os.Getenv("CKPT_REPLICAS") != "" {
		if _, err := fmt.Sscan(os.Getenv("CKPT_REPLICAS"), &replicas); err != nil || replicas < 1 {
			return 0, false, none, cli.Usagef("CKPT_REPLICAS=%q: want a positive number of copies", os.Getenv("CKPT_REPLICAS"))
		}
	}
	if mode == "" {
		mode = os.Getenv("CKPT_WRITE_MODE")
	}
	if mode != "" && mode != "pessimistic" && mode != "optimistic" {
		return 0, false, none, cli.Usagef("--mode %q: want pessimistic or optimistic", mode)
	}
	if !sc.IsZero() {
		if replicas > 0 {
			return 0, false, none, cli.Usagef("--replicas %d and redundancy %s: a version is replicated or erasure-coded, not both (drop one)", replicas, sc)
		}
		if mode == "optimistic" {
			return 0, false, none, cli.Usagef("redundancy %s needs every shard durable before the commit: it cannot be combined with --mode optimistic", sc)
		}
	}
	return replicas, mode == "optimistic", sc, nil
}

// defaultSpool is $CKPT_HOME/spool, else the system's temporary
// directory.
func defaultSpool() string {
	if h := os.Getenv("CKPT_HOME"); h != "" {
		return filepath.Join(h, "spool")
	}
	return os.TempDir()
}

// mountState is what a mount process records for 'ckpt umount': who
// serves the mount, and at the end how it ended.
type mountState struct {
	PID     int       `json:"pid"`
	Job     string    `json:"job"`
	Dir     string    `json:"dir"`
	Started time.Time `json:"started"`
	Done    bool      `json:"done"`
	Error   string    `json:"error,omitempty"`
	Latest  int64     `json:"latest"`
}

// statePath is where the state of the mount on dir is kept.
func statePath(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), "ckpt-mounts-"+strconv.Itoa(os.Getuid()), hex.EncodeToString(sum[:8])+".json")
}

func writeState(st mountState) error {
	p := statePath(st.Dir)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func readState(dir string) (mountState, error) {
	var st mountState
	raw, err := os.ReadFile(statePath(dir))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(raw, &st)
}

func runMount(ctx context.Context, g *globals, jobName, dir string, wo client.WriterOptions, key *crypt.Key, mo mount.Options) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if job, ok, _ := mount.Mounted(abs); ok {
		return fmt.Errorf("%s is already a ckpt mount (of %s): 'ckpt umount %s' first", abs, job, abs)
	}
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	wo.Logger = s.log
	mo.Job = &version.Job{Name: jobName, Catalog: s.mc, Pool: s.pool, Writer: wo, Logger: s.log,
		Reader: client.ReaderOptions{Logger: s.log, Decode: key.Decode}}
	mo.Lister = s.mc
	fsys, err := mount.New(ctx, abs, mo)
	if err != nil {
		return err
	}
	st := mountState{PID: os.Getpid(), Job: jobName, Dir: abs, Started: time.Now().UTC()}
	if err := writeState(st); err != nil {
		fmt.Fprintf(os.Stderr, "ckpt: cannot record the mount for 'ckpt umount' (%v); stop it with Ctrl-C or SIGTERM\n", err)
	}
	mode := "each close returns once its version is committed"
	if mo.Async {
		mode = "closes return at once, versions commit in the background"
	}
	fmt.Fprintf(os.Stderr, "ckpt: %s (latest version %d) on %s: %s; versions under %s; stop with 'ckpt umount %s'\n",
		jobName, fsys.Latest(), abs, mode, filepath.Join(abs, mount.VersionsDir), abs)
	fmt.Printf("mounted %s on %s\n", jobName, abs)
	os.Stdout.Sync()

	select {
	case <-fsys.Served(): // unmounted from outside: ckpt umount, fusermount -u
	case <-ctx.Done(): // SIGINT, SIGTERM
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-again
			fmt.Fprintln(os.Stderr, "ckpt: second signal: exiting now; files not yet committed are not in any version")
			mount.Detach(abs)
			os.Exit(1)
		}()
		if err := fsys.Unmount(false); err != nil {
			if !errors.Is(err, syscall.EBUSY) {
				return err
			}
			fmt.Fprintf(os.Stderr, "ckpt: %v; detaching it: the files still open commit when they are closed, then ckpt exits (signal again to exit now)\n", err)
			if err := fsys.Unmount(true); err != nil {
				return err
			}
		}
	}
	werr := fsys.Wait()
	st.Done, st.Latest = true, fsys.Latest()
	if werr != nil {
		st.Error = werr.Error()
	}
	writeState(st)
	if werr != nil {
		return fmt.Errorf("%s: the last changes were not committed: %w", abs, werr)
	}
	fmt.Fprintf(os.Stderr, "ckpt: %s unmounted; latest version of %s is %d\n", abs, jobName, st.Latest)
	return nil
}

func umountCmd(g *globals) *cobra.Command {
	var lazy bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "umount DIR",
		Short: "Unmount a 'ckpt mount' and wait for its last commit",
		Long: `Unmounts the ckpt mount on DIR. The mount process commits what changed
since its last version (names, metadata) and exits; umount waits for it
and fails if that commit failed. A busy mount (files open, a shell inside)
is refused unless --lazy, which detaches DIR at once and lets the open
files finish: their closes still commit, then the mount process exits.

If the mount process died, umount still removes the mount: files closed
before it died are in the versions it committed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUmount(cmd.Context(), args[0], lazy, timeout)
		},
	}
	c.Flags().BoolVar(&lazy, "lazy", false, "detach a busy mount at once; the open files finish first")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the mount process's last commit")
	return c
}

func runUmount(ctx context.Context, dir string, lazy bool, timeout time.Duration) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	_, mounted, err := mount.Mounted(abs)
	if err != nil {
		return fmt.Errorf("reading the mount table: %w", err)
	}
	st, serr := readState(abs)
	alive := serr == nil && !st.Done && st.PID > 0 && syscall.Kill(st.PID, 0) == nil
	if !mounted {
		if serr == nil && st.Done {
			os.Remove(statePath(abs))
		}
		return cli.WithCode(cli.ExitNotFound, fmt.Errorf("%s is not a ckpt mount (no %s mount there in /proc/self/mountinfo)", abs, mount.FSType))
	}
	if !alive {
		if err := mount.Unmount(abs, true); err != nil {
			return err
		}
		os.Remove(statePath(abs))
		fmt.Fprintf(os.Stderr, "ckpt: the process serving %s is gone; the mount is removed. Files closed before it died are in the versions it committed; later writes are lost\n", abs)
		return nil
	}
	if err := mount.Unmount(abs, lazy); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%w; close them, or 'ckpt umount --lazy %s'", err, abs)
		}
		return err
	}
	if lazy {
		fmt.Fprintf(os.Stderr, "ckpt: %s detached; pid %d commits the files still open as they are closed, then exits\n", abs, st.PID)
		return nil
	}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for syscall.Kill(st.PID, 0) == nil {
		if cur, err := readState(abs); err == nil && cur.Done {
			st = cur
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is unmounted, but pid %d has not finished its last commit after %s", abs, st.PID, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if cur, err := readState(abs); err == nil {
		st = cur
	}
	os.Remove(statePath(abs))
	if !st.Done {
		return fmt.Errorf("%s is unmounted, but pid %d exited before recording its last commit: see its log", abs, st.PID)
	}
	if st.Error != "" {
		return fmt.Errorf("%s is unmounted, but its last commit failed: %s", abs, st.Error)
	}
	fmt.Fprintf(os.Stderr, "ckpt: %s unmounted; latest version of %s is %d\n", abs, st.Job, st.Latest)
	return nil
}
