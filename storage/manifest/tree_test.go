package manifest

import (
	"errors"

	"os"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
)

// treeSample is a files version with every type of entry.
func treeSample() *Manifest {
	m := &Manifest{Job: "tree", Kind: KindFiles}
	m.Blocks = append(m.Blocks, object("d", -1, 0, 1)...)
	m.Blocks = append(m.Blocks, object("d/empty", -1, 0, 1)...)
	m.Blocks = append(m.Blocks, object("d/run.sh", -1, 300, 128, "s1")...)
	m.Blocks = append(m.Blocks, object("d/secret", -1, 0, 1)...)
	m.Blocks = append(m.Blocks, object("link", -1, 0, 1)...)
	m.Entries = []Entry{
		{Object: "d", Rank: -1, Type: TypeDir, Mode: 0o755, MTime: 1700000000123456789},
		{Object: "d/empty", Rank: -1, Type: TypeDir, Mode: 0o700, MTime: 1},
		{Object: "d/run.sh", Rank: -1, Type: TypeFile, Mode: 0o4755, MTime: 2, CTime: 3, Inode: 1 << 40},
		{Object: "d/secret", Rank: -1, Type: TypeFile, Mode: 0o600, MTime: 4},
		{Object: "link", Rank: -1, Type: TypeSymlink, Mode: 0o777, MTime: 5, Target: "d/run.sh"},
	}
	m.LogicalBytes = m.Size()
	return m
}

func TestEntriesRoundTrip(t *testing.T) {
	m := treeSample()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, m)
	tree := got.Tree(-1)
	if len(tree) != 5 || tree[2].Object != "d/run.sh" || tree[2].Size != 300 || len(tree[2].Blocks) != 3 || tree[2].Mode != 0o4755 {
		t.Fatalf("tree %+v", tree)
	}
	if tree[4].Target != "d/run.sh" || tree[4].Type != TypeSymlink {
		t.Fatalf("symlink %+v", tree[4])
	}
}

// The files written by format 1 (testdata, made by the build before
// format 2) still read: a files version's objects are regular files.
func TestReadsFormat1(t *testing.T) {
	for _, tt := range []struct {
		file  string
		files int
	}{{"testdata/format1-files.arrow", 2}, {"testdata/format1-mpi.arrow", 0}} {
		data, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		tree := m.Tree(-1)
		if len(tree) != tt.files {
			t.Fatalf("%s: tree of %d, want %d", tt.file, len(tree), tt.files)
		}
		for _, f := range tree {
			if f.Type != TypeFile || f.Mode != 0o644 {
				t.Fatalf("%s: %+v", tt.file, f.Entry)
			}
		}
		// A manager of this build stamps a version of an older writer:
		// the result keeps format 1 and reads.
		m.Version = 9
		out, err := Splice(m, data)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Unmarshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if again.Version != 9 || len(again.Blocks) != len(m.Blocks) {
			t.Fatalf("stamped format-1 manifest: version %d, %d blocks", again.Version, len(again.Blocks))
		}
		if _, f, _ := header(out); f != formatV1 {
			t.Fatalf("stamped format %s", f)
		}
		if _, err := Splice(m, data, mustMarshal(t, treeSample())); !errors.Is(err, ErrInvalid) {
			t.Fatalf("splice of format 1 and 2: %v", err)
		}
	}
}

func mustMarshal(t *testing.T, m *Manifest) []byte {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEntryRules(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(m *Manifest)
		msg  string
	}{
		{"dotdot", func(m *Manifest) { m.Entries[3].Object = "../x"; m.Blocks[6].Object = "../x" }, "leads out"},
		{"absolute", func(m *Manifest) { m.Entries[3].Object = "/etc/x"; m.Blocks[6].Object = "/etc/x" }, "absolute"},
		{"unclean", func(m *Manifest) { m.Entries[3].Object = "d//x"; m.Blocks[6].Object = "d//x" }, "not clean"},
		{"dup", func(m *Manifest) { m.Entries[1].Object = "d" }, "two entries"},
		{"no blocks", func(m *Manifest) { m.Entries[1].Object = "zzz" }, "has no blocks"},
		{"dir with data", func(m *Manifest) { m.Entries[2].Type = TypeDir }, "a dir with 300 bytes"},
		{"symlink no target", func(m *Manifest) { m.Entries[4].Target = "" }, "symlink target"},
		{"file with target", func(m *Manifest) { m.Entries[3].Target = "x" }, "symlink target"},
		{"mode", func(m *Manifest) { m.Entries[3].Mode = 0o10000 }, "bits beyond"},
		{"type", func(m *Manifest) { m.Entries[3].Type = "fifo" }, "unknown type"},
		{"inside a file", func(m *Manifest) { m.Entries[0].Type = TypeSymlink; m.Entries[0].Target = "/" }, `inside "d", a symlink`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := treeSample()
			tt.edit(m)
			err := m.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want ErrInvalid with %q", err, tt.msg)
			}
		})
	}
}

// An entry on a row past offset 0, or entry fields on a row without a
// type, is refused by the decoder.
func TestEntryColumnsDecode(t *testing.T) {
	m := treeSample()
	b := mustMarshal(t, m)
	if _, err := Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	md := map[string]string{MetaFormat: FormatVersion, MetaJob: "j"}
	stream := func(t0, t1 string, mode1 uint32) []byte {
		return writeStream(t, pyarrowFields2(32), md, func(rb *array.RecordBuilder) {
			fillRowTyped(rb, "f", 0, 10, make([]byte, 32), false, t0, 0)
			fillRowTyped(rb, "f", 10, 5, make([]byte, 32), false, t1, mode1)
		})
	}
	if _, err := Unmarshal(stream("file", "", 0)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		in  []byte
		msg string
	}{
		{stream("file", "file", 0), "at offset 10, not 0"},
		{stream("file", "", 0o644), "entry fields without a type"},
	} {
		if _, err := Unmarshal(tt.in); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.msg) {
			t.Fatalf("got %v, want ErrCorrupt with %q", err, tt.msg)
		}
	}
	if _, err := entryIndex(&Manifest{Job: "j", Blocks: object("a", -1, 10, 4), Entries: []Entry{{Object: "b", Rank: -1, Type: TypeFile}}}); err == nil {
		t.Fatal("an entry without a row was encoded")
	}
}
