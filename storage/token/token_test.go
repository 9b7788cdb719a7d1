package token

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestResolveOrder(t *testing.T) {
	dir := t.TempDir()
	f1 := filepath.Join(dir, "a")
	f2 := filepath.Join(dir, "b")
	os.WriteFile(f1, []byte("  file-token-0123456789\n"), 0o600)
	os.WriteFile(f2, []byte("envfile-token-0123456789"), 0o600)

	t.Setenv("CKPT_TOKEN", "")
	t.Setenv("CKPT_TOKEN_FILE", "")
	if _, err := Resolve(""); !errors.Is(err, ErrNoToken) {
		t.Fatalf("no token: %v", err)
	}
	t.Setenv("CKPT_TOKEN_FILE", f2)
	if got, _ := Resolve(""); string(got) != "envfile-token-0123456789" {
		t.Fatalf("CKPT_TOKEN_FILE: %q", got)
	}
	t.Setenv("CKPT_TOKEN", "env-token-0123456789")
	if got, _ := Resolve(""); string(got) != "env-token-0123456789" {
		t.Fatalf("CKPT_TOKEN: %q", got)
	}
	if got, _ := Resolve(f1); string(got) != "file-token-0123456789" {
		t.Fatalf("--token-file: %q", got)
	}
	t.Setenv("CKPT_TOKEN", "short")
	if _, err := Resolve(""); err == nil {
		t.Fatal("short token accepted")
	}
}

func TestEnsureCreatesPrivateFileOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "home", "token")
	a, err := Ensure(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := Ensure(p)
	if string(a) != string(b) || len(a) != 64 {
		t.Fatalf("tokens %q %q", a, b)
	}
}
