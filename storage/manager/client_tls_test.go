package manager

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/tlsconf/tlsconftest"
)

// serveTLS starts a manager behind an httptest server with the
// certificate of certs.
func serveTLS(t *testing.T, certs *tlsconftest.Certs) *httptest.Server {
	t.Helper()
	m, err := Open(t.TempDir(), Options{Token: testToken, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(m.Handler())
	srv.TLS = certs.Server(t)
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		m.Close()
	})
	return srv
}

func wantClientErr(t *testing.T, err error, wants ...string) {
	t.Helper()
	if !errors.Is(err, catalog.ErrUnreachable) {
		t.Errorf("error %v does not match ErrUnreachable", err)
	}
	for _, w := range wants {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}

func TestClientOverHTTPS(t *testing.T) {
	certs := tlsconftest.New(t)
	srv := serveTLS(t, certs)
	addr := srv.Listener.Addr().String()
	ctx := context.Background()
	c := catalog.NewClient(addr, testToken, catalog.ClientOptions{TLS: certs.Client(t)})
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping over HTTPS: %v", err)
	}
	hb := catalog.Heartbeat{ID: "store-1", Addr: "127.0.0.1:1", Usage: storage.Usage{Quota: 1 << 30}}
	if err := c.Heartbeat(ctx, hb); err != nil {
		t.Fatal(err)
	}
	stores, err := c.Stores(ctx)
	if err != nil || len(stores) != 1 || stores[0].ID != "store-1" {
		t.Fatalf("stores over HTTPS = %+v, %v", stores, err)
	}
	if _, err := catalog.NewClient(addr, []byte("wrong"), catalog.ClientOptions{TLS: certs.Client(t)}).Stores(ctx); !strings.Contains(fmtErr(err), "refused the cluster token") {
		t.Fatalf("wrong token over HTTPS: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestClientTLSMismatch(t *testing.T) {
	certs := tlsconftest.New(t)
	ctx := context.Background()

	tlsSrv := serveTLS(t, certs)
	tlsAddr := tlsSrv.Listener.Addr().String()
	err := catalog.NewClient(tlsAddr, testToken, catalog.ClientOptions{}).Ping(ctx)
	wantClientErr(t, err, "manager "+tlsAddr+" expects TLS (it runs with --tls-cert)", "--tls-ca")

	_, plainSrv, _ := serve(t, Options{})
	plainAddr := plainSrv.Listener.Addr().String()
	err = catalog.NewClient(plainAddr, testToken, catalog.ClientOptions{TLS: certs.Client(t)}).Ping(ctx)
	wantClientErr(t, err, "manager "+plainAddr+" does not speak TLS (started without --tls-cert?)")

	other := tlsconftest.New(t)
	err = catalog.NewClient(tlsAddr, testToken, catalog.ClientOptions{TLS: other.Client(t)}).Ping(ctx)
	wantClientErr(t, err, "manager "+tlsAddr+": its TLS certificate is not trusted (wrong --tls-ca / CKPT_TLS_CA?)")
}
