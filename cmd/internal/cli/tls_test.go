package cli

import (
	"strings"
	"testing"

	"github.com/ckptio/ckptio/storage/tlsconf/tlsconftest"
)

func TestServerTLS(t *testing.T) {
	c := tlsconftest.New(t)
	if cfg, err := ServerTLS("", ""); cfg != nil || err != nil {
		t.Fatalf("no flags: %v, %v; want nil, nil", cfg, err)
	}
	if _, err := ServerTLS(c.CertFile, ""); err == nil || !strings.Contains(err.Error(), "--tls-cert needs --tls-key") {
		t.Fatalf("--tls-cert alone: %v", err)
	}
	if _, err := ServerTLS("", c.KeyFile); err == nil || !strings.Contains(err.Error(), "--tls-key needs --tls-cert") {
		t.Fatalf("--tls-key alone: %v", err)
	}
	if cfg, err := ServerTLS(c.CertFile, c.KeyFile); cfg == nil || err != nil {
		t.Fatalf("both: %v, %v", cfg, err)
	}
}

func TestClientTLS(t *testing.T) {
	c := tlsconftest.New(t)
	if cfg, err := ClientTLS(""); cfg != nil || err != nil {
		t.Fatalf("no CA: %v, %v; want nil, nil (clear)", cfg, err)
	}
	if cfg, err := ClientTLS(SystemCA); cfg == nil || cfg.RootCAs != nil || err != nil {
		t.Fatalf("system: %v, %v; want the system's roots", cfg, err)
	}
	if cfg, err := ClientTLS(c.CAFile); cfg == nil || cfg.RootCAs == nil || err != nil {
		t.Fatalf("CA file: %v, %v", cfg, err)
	}
	if _, err := ClientTLS(c.Dir + "/missing.pem"); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("missing CA file: %v", err)
	}
}
