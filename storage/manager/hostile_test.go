package manager

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage/catalog"
)

// A stranger announces a 256 MiB commit body under a well-formed
// Authorization header with a current timestamp and a made-up signature,
// sends a few bytes and stops. The manager must not allocate what the
// client announced before it has seen the bytes (and the signature).
func TestHostileAnnouncedBodyIsNotAllocated(t *testing.T) {
	_, srv, _ := serve(t, Options{})
	const announced = DefaultMaxManifestBytes
	sig := strings.Repeat("00", 32)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 4 {
		nc, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(nc, "POST /v1/txns/x/commit HTTP/1.1\r\nHost: m\r\nContent-Type: %s\r\n"+
			"Authorization: %s ts=%d,sig=%s\r\nContent-Length: %d\r\n\r\nARROW1",
			catalog.ManifestContentType, catalog.AuthScheme, time.Now().Unix(), sig, announced)
		nc.(*net.TCPConn).CloseWrite() // the body ends early: the handler answers
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		nc.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("truncated body: HTTP %d, want 400", resp.StatusCode)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("4 requests announcing %d bytes and sending 6 made the manager allocate %d MiB", announced, grew>>20)
	}
}
