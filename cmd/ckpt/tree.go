package main

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/manifest"
	"github.com/ckptio/ckptio/storage/tree"
)

// listed is one line of 'ckpt ls': an entry of a version's tree, or an
// MPI region, under the path 'ckpt restore' writes it to.
type listed struct {
	Path   string             `json:"path"`
	Type   manifest.EntryType `json:"type"` // file, dir, symlink, or region
	Mode   string             `json:"mode"` // octal, "0755"
	Size   int64              `json:"size"`
	MTime  *time.Time         `json:"mtime,omitempty"` // absent when unknown
	Target string             `json:"target,omitempty"`
	Rank   *int32             `json:"rank,omitempty"` // MPI versions only
	Blocks int                `json:"blocks"`
}

const typeRegion manifest.EntryType = "region"

// modeString is ls -l's mode column.
func modeString(f manifest.File) string {
	b := []byte("----------")
	switch f.Type {
	case manifest.TypeDir:
		b[0] = 'd'
	case manifest.TypeSymlink:
		b[0] = 'l'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if f.Mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	special := func(bit uint32, at int, set, noExec byte) {
		if f.Mode&bit != 0 {
			if b[at] == 'x' {
				b[at] = set
			} else {
				b[at] = noExec
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

// treeDoc is 'ckpt ls --json'.
type treeDoc struct {
	Schema  string   `json:"schema"`
	Job     string   `json:"job"`
	Version int64    `json:"version"`
	Entries []listed `json:"entries"`
}

// diffDoc is 'ckpt diff --json'.
type diffDoc struct {
	Schema  string        `json:"schema"`
	Job     string        `json:"job"`
	From    int64         `json:"from"`
	To      int64         `json:"to"`
	Changes []tree.Change `json:"changes"`
}

func lsCmd(g *globals) *cobra.Command {
	var ver int64
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls JOB [PATH] [--version N] [--json]",
		Short: "List the files of a version of JOB, like ls -l",
		Long: `Lists the files, directories and symlinks of one version of JOB (default:
the latest), one per line like 'ls -lR': mode, size, mtime, path, and a
symlink's target. With PATH, only that entry and what it holds. For an MPI
checkpoint each rank's regions are listed as rank-NNNNN/REGION and its
protected files under rank-NNNNN/files/, where 'ckpt restore' writes them.
--json prints {"schema": "ckptio.tree/1", job, version, entries: [{path,
type, mode, size, mtime, target, rank, blocks}]} (docs/json.md).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			m, err := s.mc.Manifest(ctx, args[0], ver)
			if err != nil {
				return err
			}
			files, err := tree.Layout(m)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				p := strings.TrimSuffix(path.Clean(args[1]), "/")
				files = slices.DeleteFunc(files, func(f tree.Shown) bool {
					return f.Object != p && !strings.HasPrefix(f.Object, p+"/")
				})
				if len(files) == 0 {
					return cli.WithCode(cli.ExitNotFound, fmt.Errorf("%s version %d holds nothing at %q ('ckpt ls %s --version %d' lists it)", args[0], m.Version, args[1], args[0], m.Version))
				}
			}
			if asJSON {
				out := make([]listed, 0, len(files))
				for _, f := range files {
					l := listed{Path: f.Object, Type: f.Type, Mode: fmt.Sprintf("%04o", f.Mode), Size: f.Size, Target: f.Target, Blocks: len(f.Blocks)}
					if f.Region {
						l.Type = typeRegion
					}
					if f.MTime != 0 {
						t := time.Unix(0, f.MTime).UTC()
						l.MTime = &t
					}
					if m.Kind == manifest.KindMPI {
						r := f.Rank
						l.Rank = &r
					}
					out = append(out, l)
				}
				return printJSON(treeDoc{Schema: schemaTree, Job: m.Job, Version: m.Version, Entries: out})
			}
			width := 1
			for _, f := range files {
				width = max(width, len(fmt.Sprint(f.Size)))
			}
			for _, f := range files {
				when := "-"
				if f.MTime != 0 {
					when = time.Unix(0, f.MTime).Local().Format("2006-01-02 15:04:05")
				}
				name := shown(f.Object)
				if f.Type == manifest.TypeSymlink {
					name += " -> " + shown(f.Target)
				}
				fmt.Printf("%s %*d %s %s\n", modeString(f.File), width, f.Size, when, name)
			}
			return nil
		},
	}
	c.Flags().Int64Var(&ver, "version", 0, "version to list (default: latest)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func diffCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "diff JOB A B [--json]",
		Short: "Show the files added, removed and changed from version A to version B of JOB",
		Long: `Compares two versions of JOB entry by entry and prints one line per
difference, sorted by path:

  + PATH  (SIZE)                    added in B
  - PATH  (SIZE)                    removed in B
  M PATH  SIZE_A -> SIZE_B, N changed: what      content changed
  M PATH  what                               only metadata changed

where N counts the bytes of B's blocks that A does not hold at the same
offset, and "what" lists content, mode, mtime, type, target. A last line
sums them. Nothing is read from the stores: the manifests say it all.
--json prints {"schema": "ckptio.diff/1", job, from, to, changes: [{path,
change, type, old_size, new_size, changed_bytes, what}]} (docs/json.md).`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var vs [2]int64
			for i, a := range args[1:] {
				if _, err := fmt.Sscan(a, &vs[i]); err != nil || vs[i] < 1 {
					return cli.Usagef("version %q: want a version number (see 'ckpt versions %s')", a, args[0])
				}
			}
			s, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			var trees [2][]manifest.File
			for i, v := range vs {
				m, err := s.mc.Manifest(ctx, args[0], v)
				if err != nil {
					return err
				}
				shown, err := tree.Layout(m)
				if err != nil {
					return err
				}
				trees[i] = tree.Files(shown)
			}
			changes := tree.Diff(trees[0], trees[1])
			if asJSON {
				if changes == nil {
					changes = []tree.Change{}
				}
				return printJSON(diffDoc{Schema: schemaDiff, Job: args[0], From: vs[0], To: vs[1], Changes: changes})
			}
			var added, removed, changed int
			var bytes int64
			for _, c := range changes {
				switch c.Kind {
				case "added":
					added++
					bytes += c.NewSize
					fmt.Printf("+ %s  (%s)\n", shown(c.Path), storage.FormatSize(c.NewSize))
				case "removed":
					removed++
					fmt.Printf("- %s  (%s)\n", shown(c.Path), storage.FormatSize(c.OldSize))
				default:
					changed++
					bytes += c.ChangedBytes
					if slices.Contains(c.What, "content") {
						fmt.Printf("M %s  %s -> %s, %s changed: %s\n", shown(c.Path), storage.FormatSize(c.OldSize), storage.FormatSize(c.NewSize),
							storage.FormatSize(c.ChangedBytes), strings.Join(c.What, ", "))
					} else {
						fmt.Printf("M %s  %s\n", shown(c.Path), strings.Join(c.What, ", "))
					}
				}
			}
			fmt.Printf("%s versions %d -> %d: %d added, %d removed, %d changed, %s of new or changed content\n",
				args[0], vs[0], vs[1], added, removed, changed, storage.FormatSize(bytes))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// shown is a name from a manifest as ls and diff print it: as it is when
// it is printable UTF-8, else Go-quoted, so that a name holding terminal
// escapes (anyone with the token can commit one) cannot drive the
// operator's terminal.
func shown(name string) string {
	if utf8.ValidString(name) && strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return name
	}
	return strconv.Quote(name)
}
