package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/tlsconf"
	"github.com/ckptio/ckptio/storage/tlsconf/tlsconftest"
)

func TestServerErrorsNameTheFile(t *testing.T) {
	c := tlsconftest.New(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"missing cert", missing, c.KeyFile, missing},
		{"missing key", c.CertFile, missing, missing},
		{"garbage cert", garbage, c.KeyFile, garbage},
		{"key for cert", c.KeyFile, c.CertFile, c.KeyFile},
		{"no key", c.CertFile, "", "without its key file"},
		{"no cert", "", c.KeyFile, "without its certificate file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsconf.Server(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Server(%q, %q) = %v, want an error naming %q", tc.cert, tc.key, err, tc.want)
			}
		})
	}
	cfg, err := tlsconf.Server(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || len(cfg.Certificates) != 1 {
		t.Fatalf("server config: min version %x, %d certificates", cfg.MinVersion, len(cfg.Certificates))
	}
}

func TestClientErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, f := range []string{empty, missing} {
		if _, err := tlsconf.Client(f, ""); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Client(%q) = %v, want an error naming the file", f, err)
		}
	}
	cfg, err := tlsconf.Client("", "")
	if err != nil || cfg.RootCAs != nil || cfg.MinVersion != tls.VersionTLS13 {
		t.Fatalf("Client with system roots: %+v, %v", cfg, err)
	}
}

// handshake runs a TLS handshake over loopback between server and client
// configurations and returns the client's error.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			return
		}
	}()
	defer func() { <-done }()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		return err
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(got) != "hello" {
		t.Fatalf("read %q over TLS", got)
	}
	return nil
}

func TestHandshake(t *testing.T) {
	c := tlsconftest.New(t)
	if err := handshake(t, c.Server(t), c.Client(t)); err != nil {
		t.Fatalf("handshake with the right CA: %v", err)
	}
	other := tlsconftest.New(t)
	err := handshake(t, c.Server(t), other.Client(t))
	var ve *tls.CertificateVerificationError
	if err == nil || !errors.As(err, &ve) {
		t.Fatalf("handshake with another CA: %v, want a verification error", err)
	}
	named, err := tlsconf.Client(c.CAFile, "ckpt.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, c.Server(t), named); err == nil {
		t.Fatal("handshake with a server name the certificate lacks succeeded")
	}
}

func TestForHost(t *testing.T) {
	c := tlsconftest.New(t)
	cfg := c.Client(t)
	got := tlsconf.ForHost(cfg, "127.0.0.1")
	if got.ServerName != "127.0.0.1" || cfg.ServerName != "" {
		t.Fatalf("ForHost: %q, original %q", got.ServerName, cfg.ServerName)
	}
	cfg.ServerName = "localhost"
	if got := tlsconf.ForHost(cfg, "127.0.0.1"); got != cfg {
		t.Fatal("ForHost replaced a configured server name")
	}
}

func TestClientPEM(t *testing.T) {
	c := tlsconftest.New(t)
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsconf.ClientPEM(pem, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, c.Server(t), cfg); err != nil {
		t.Fatalf("handshake with the CA's PEM: %v", err)
	}
	if _, err := tlsconf.ClientPEM([]byte("not pem"), ""); err == nil {
		t.Fatal("ClientPEM of garbage succeeded")
	}
	if cfg, err := tlsconf.ClientPEM(nil, ""); err != nil || cfg.RootCAs != nil {
		t.Fatalf("ClientPEM(nil) = %+v, %v; want the system's roots", cfg, err)
	}
}
