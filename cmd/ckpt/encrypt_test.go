package main_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/cluster/clustertest"
	"github.com/ckptio/ckptio/storage/crypt"
)

// TestEncryptedPutGet: ckpt put --encrypt-key-file stores nothing a store's
// owner can read, ckpt get with the key returns the exact bytes, and
// without the key (or with another) fails at once with one line naming
// the key; the next put with the key reuses every block.
func TestEncryptedPutGet(t *testing.T) {
	c := clustertest.NewCluster(t, clustertest.Options{Stores: 2})
	work := t.TempDir()
	state := writeRandom(t, filepath.Join(work, "state.bin"), 3<<20, 21)
	secret := []byte("CONFIDENTIAL-RESULT-4711")
	notes := bytes.Repeat(append(bytes.Clone(secret), " converged at step 900\n"...), 10_000)
	if err := os.WriteFile(filepath.Join(work, "notes.txt"), notes, 0o644); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "job.key")
	run := func(env []string, args ...string) (string, int) {
		t.Helper()
		_, errOut, code := c.Run(t, work, env, "ckpt", args...)
		return errOut, code
	}

	if errOut, code := run(nil, "put", "--encrypt-key-file", keyFile, "--new-key", "job", "state.bin", "notes.txt"); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	key, err := crypt.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	if errOut, code := run(nil, "put", "--encrypt-key-file", keyFile, "--new-key", "job", "notes.txt"); code == 0 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("--new-key over an existing key file: code %d, %s", code, errOut)
	}

	get := func(env []string, args ...string) {
		t.Helper()
		to := t.TempDir()
		if errOut, code := run(env, append([]string{"get", "job", "--to", to}, args...)...); code != 0 {
			t.Fatalf("get %v: %s", args, errOut)
		}
		for name, want := range map[string][]byte{"state.bin": state, "notes.txt": notes} {
			if got, err := os.ReadFile(filepath.Join(to, name)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("get %v: %s differs (err %v)", args, name, err)
			}
		}
	}
	get(nil, "--encrypt-key-file", keyFile)
	get([]string{"CKPT_ENCRYPT_KEY_FILE=" + keyFile})

	// Without the key, or with another, get fails at once, in one line.
	want := "ckpt: version 1 of job is encrypted with key " + key.Fingerprint() + "; give it with --encrypt-key-file or CKPT_ENCRYPT_KEY_FILE\n"
	if errOut, code := run(nil, "get", "job", "--to", t.TempDir()); code == 0 || errOut != want {
		t.Fatalf("get without the key: code %d, stderr %q, want %q", code, errOut, want)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := crypt.NewKeyFile(other); err != nil {
		t.Fatal(err)
	}
	errOut, code := run(nil, "get", "job", "--to", t.TempDir(), "--encrypt-key-file", other)
	if code == 0 || !strings.Contains(errOut, "not with the key given") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("get with another key: code %d, %q", code, errOut)
	}
	if errOut, code := run(nil, "restore", "job", "--to", t.TempDir()); code == 0 || errOut != want {
		t.Fatalf("restore without the key: code %d, %q", code, errOut)
	}
	if errOut, code := run(nil, "restore", "job", "--to", t.TempDir(), "--encrypt-key-file", keyFile); code != 0 {
		t.Fatalf("restore with the key: %s", errOut)
	}
	if errOut, code := run(nil, "verify", "job", "--deep", "--encrypt-key-file", keyFile); code != 0 {
		t.Fatalf("verify --deep with the key: %s", errOut)
	}
	if errOut, code := run(nil, "verify", "job", "--deep"); code == 0 || errOut != want {
		t.Fatalf("verify --deep without the key: code %d, %q", code, errOut)
	}

	// The same files again with the same key: every block reused.
	if errOut, code := run(nil, "put", "--encrypt-key-file", keyFile, "job", "state.bin", "notes.txt"); code != 0 {
		t.Fatalf("second put: %s", errOut)
	}
	if vs := versions(t, c, work, "job"); len(vs) != 2 || vs[1].NewBytes != 0 || vs[1].SentBytes != 0 {
		t.Fatalf("second put with the same key: %+v; want nothing sent", vs)
	}

	// No store directory holds the secret; it does once it is put in clear.
	if n := filesContaining(t, c.Dir, secret); n != 0 {
		t.Fatalf("%d files under the stores hold the plaintext", n)
	}
	if errOut, code := run(nil, "put", "clear", "notes.txt"); code != 0 {
		t.Fatalf("unencrypted put: %s", errOut)
	}
	if n := filesContaining(t, c.Dir, secret); n == 0 {
		t.Fatal("the search finds no plaintext even unencrypted: it proves nothing")
	}
}

// filesContaining counts the files under the stores' directories in dir
// that hold pattern.
func filesContaining(t *testing.T, dir string, pattern []byte) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); !strings.HasPrefix(rel, "store-") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, pattern) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
