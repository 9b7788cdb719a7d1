// Command mountbench measures the mounted file system against the
// commands it stands in for, in one run on one local cluster: it writes
// a --size file through 'ckpt mount' (cp into the mount) and with
// 'ckpt put', reads it back through versions/ and with 'ckpt get' (both
// into a local file, fsynced, as get writes), and rewrites it with a
// tenth changed, through the mount, reporting the new bytes the version
// stored. Figures are ratios measured in the same run, since absolute
// rates are noisy on a shared machine.
//
//	make bench-mount                  # 1 GiB
//	SIZE=256MiB make bench-mount
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/cluster"
)

func main() {
	sizeS := flag.String("size", "1GiB", "bytes of the file")
	blockS := flag.String("block-size", "64KiB", "block size of put and of the mount (put's default)")
	bin := flag.String("bin", "bin", "directory of the ckpt binaries")
	stores := flag.Int("stores", 4, "number of local stores")
	dir := flag.String("dir", "", "work directory (default: a temporary one under the current directory)")
	flag.Parse()
	if err := run(*sizeS, *blockS, *bin, *stores, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "mountbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	ckpt  string
	env   []string
	work  string
	block string
	size  int64
}

func run(sizeS, blockS, bin string, stores int, dir string) error {
	size, err := storage.ParseSize(sizeS)
	if err != nil {
		return err
	}
	bs, err := storage.ParseSize(blockS)
	if err != nil {
		return err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp(".", ".mountbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	dir, _ = filepath.Abs(dir)
	ckpt, err := filepath.Abs(filepath.Join(bin, "ckpt"))
	if err != nil {
		return err
	}
	ctx := context.Background()
	home := filepath.Join(dir, "cluster")
	info, err := cluster.Up(ctx, cluster.Options{Home: home, Stores: stores, Quota: "64GiB"})
	if err != nil {
		return err
	}
	defer cluster.Down(home)
	b := &bench{ckpt: ckpt, work: dir, block: blockS, size: size,
		env: append(os.Environ(), "CKPT_MANAGER="+info.Manager, "CKPT_TOKEN_FILE="+info.TokenFile, "CKPT_HOME="+home)}

	data := filepath.Join(dir, "data.bin")
	if err := writeData(data, size, int(bs), 1, nil); err != nil {
		return err
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}

	// Writes: put, then cp into the mount (the close returns once the
	// version is committed).
	putT, err := b.timed("ckpt", "put", "--block-size", blockS, "putjob", "data.bin")
	if err != nil {
		return err
	}
	m, err := b.mount(mnt)
	if err != nil {
		return err
	}
	defer m.stop(b)
	cpT, err := b.timed("cp", data, filepath.Join(mnt, "data.bin"))
	if err != nil {
		return err
	}

	// Reads, into a local file fsynced: get, then through versions/.
	getT, err := b.timed("ckpt", "get", "putjob", "--to", filepath.Join(dir, "got"))
	if err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(dir, "got"))
	readT, err := copyTimed(filepath.Join(mnt, "versions", "1", "data.bin"), filepath.Join(dir, "read.bin"))
	if err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "read.bin"))
	if err := dropCache(filepath.Join(mnt, "versions", "1", "data.bin")); err != nil {
		return err
	}
	nullT, err := copyTimed(filepath.Join(mnt, "versions", "1", "data.bin"), os.DevNull)
	if err != nil {
		return err
	}

	// A tenth changed: rewritten whole (cp, O_TRUNC), then patched in
	// place (pwrite of the changed runs).
	runs := changedRuns(size, 1)
	changed := filepath.Join(dir, "changed.bin")
	if err := writeData(changed, size, int(bs), 1, runs); err != nil {
		return err
	}
	if _, err := b.timed("cp", changed, filepath.Join(mnt, "data.bin")); err != nil {
		return err
	}
	rewrite, err := b.newBytes("mountjob")
	if err != nil {
		return err
	}
	if err := patchRuns(filepath.Join(mnt, "data.bin"), size, int(bs), runs); err != nil {
		return err
	}
	patched, err := b.newBytes("mountjob")
	if err != nil {
		return err
	}

	mb := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	fmt.Printf("mountbench: %s file, %s blocks, %d local stores, 2 copies, one run\n", storage.FormatSize(size), blockS, stores)
	fmt.Printf("%-44s %8s %8s\n", "", "MB/s", "ratio")
	fmt.Printf("%-44s %8.0f %8s\n", "write: ckpt put", mb(putT), "1.00")
	fmt.Printf("%-44s %8.0f %8.2f   (target >= 0.80)\n", "write: cp into the mount (close = committed)", mb(cpT), mb(cpT)/mb(putT))
	fmt.Printf("%-44s %8.0f %8s\n", "read: ckpt get (to a file, fsynced)", mb(getT), "1.00")
	fmt.Printf("%-44s %8.0f %8.2f   (target >= 0.80)\n", "read: versions/1 (to a file, fsynced)", mb(readT), mb(readT)/mb(getT))
	fmt.Printf("%-44s %8.0f %8.2f   (the mount's read path alone)\n", "read: versions/1 again, to /dev/null", mb(nullT), mb(nullT)/mb(getT))
	fmt.Printf("%-44s %8s %7.1f%%   (target <= 12%%)\n", "10% changed, rewritten whole: new bytes", storage.FormatSize(rewrite), 100*float64(rewrite)/float64(size))
	fmt.Printf("%-44s %8s %7.1f%%\n", "10% changed, patched in place: new bytes", storage.FormatSize(patched), 100*float64(patched)/float64(size))
	return nil
}

// timed runs a command in the work directory and returns how long it
// took.
func (b *bench) timed(name string, args ...string) (time.Duration, error) {
	if name == "ckpt" {
		name = b.ckpt
	}
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = b.work, b.env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}

// newBytes is the new bytes of a job's latest version.
func (b *bench) newBytes(job string) (int64, error) {
	cmd := exec.Command(b.ckpt, "versions", job, "--json")
	cmd.Env = b.env
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("ckpt versions: %v", err)
	}
	var doc struct {
		Versions []struct {
			NewBytes int64 `json:"new_bytes"`
		} `json:"versions"`
	}
	vs := &doc.Versions
	if err := json.Unmarshal(out, &doc); err != nil || len(*vs) == 0 {
		return 0, fmt.Errorf("ckpt versions --json: %q", out)
	}
	return (*vs)[len(*vs)-1].NewBytes, nil
}

type mountProc struct {
	cmd *exec.Cmd
	dir string
}

// mount starts 'ckpt mount mountjob DIR' and waits for its line.
func (b *bench) mount(dir string) (*mountProc, error) {
	cmd := exec.Command(b.ckpt, "mount", "--block-size", b.block, "mountjob", dir)
	cmd.Env = b.env
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "mounted ") {
			go io.Copy(io.Discard, out)
			return &mountProc{cmd: cmd, dir: dir}, nil
		}
	}
	cmd.Wait()
	return nil, fmt.Errorf("ckpt mount exited before mounting")
}

func (m *mountProc) stop(b *bench) {
	if _, err := b.timed("ckpt", "umount", m.dir); err != nil {
		fmt.Fprintln(os.Stderr, "mountbench:", err)
		m.cmd.Process.Kill()
	}
	m.cmd.Wait()
}

// copyTimed copies src to a new file dst, fsynced, and returns how long
// it took.
func copyTimed(src, dst string) (time.Duration, error) {
	start := time.Now()
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	if _, err := io.CopyBuffer(out, in, make([]byte, 1<<20)); err != nil {
		return 0, err
	}
	if err := out.Sync(); err != nil && dst != os.DevNull {
		return 0, err
	}
	return time.Since(start), nil
}

// dropCache drops the kernel's cached pages of path, so that the next
// read goes to the file system again.
func dropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// changedRuns picks the 1 MiB runs that make a tenth of a file of size
// bytes, at random offsets.
func changedRuns(size int64, seed int64) []int64 {
	const run = 1 << 20
	rng := rand.New(rand.NewSource(seed))
	n := max(1, size/10/run)
	offs := make([]int64, 0, n)
	for _, i := range rng.Perm(int(max(1, size/run)))[:n] {
		offs = append(offs, int64(i)*run+rng.Int63n(run/2))
	}
	return offs
}

// block fills p with the bytes of the file at off: incompressible, every
// block different (its index stamped in), and the changed runs changed.
func fill(p []byte, off int64, bs int, pool []byte, runs []int64) {
	for i := 0; i < len(p); {
		at := (off + int64(i)) % int64(len(pool))
		i += copy(p[i:], pool[at:])
	}
	for b := (off + int64(bs) - 1) / int64(bs) * int64(bs); b < off+int64(len(p)); b += int64(bs) {
		binary.LittleEndian.PutUint64(p[b-off:], uint64(b/int64(bs)))
	}
	for _, r := range runs {
		for i := max(r, off); i < min(r+1<<20, off+int64(len(p))); i++ {
			p[i-off] ^= 0x5a
		}
	}
}

var pool = func() []byte {
	p := make([]byte, 64<<20+13)
	rand.New(rand.NewSource(1)).Read(p)
	return p
}()

// writeData writes the file of size bytes (with runs changed), fsynced.
func writeData(path string, size int64, bs int, seed int64, runs []int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-off)]
		fill(p, off, bs, pool, runs)
		if _, err := f.Write(p); err != nil {
			return err
		}
	}
	return f.Sync()
}

// patchRuns changes the runs of the mounted file in place, once more.
func patchRuns(path string, size int64, bs int, runs []int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	p := make([]byte, 1<<20)
	for _, r := range runs {
		n := min(int64(len(p)), size-r)
		fill(p[:n], r, bs, pool, nil)
		for i := range p[:n] {
			p[i] ^= 0xa5 // bytes no version held
		}
		if _, err := f.WriteAt(p[:n], r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
