package store_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/memstore"
	"github.com/ckptio/ckptio/storage/store"
	"github.com/ckptio/ckptio/storage/wire"
)

// A client hammering the store with a wrong token is refused every time,
// but logged only on the 1st, 2nd, 4th... refusal: the store's log on a
// desktop must not grow with the attacker's rate.
func TestHostileWrongTokenHammerDoesNotFloodTheLog(t *testing.T) {
	const attempts = 64
	core, logs := observer.New(zap.InfoLevel)
	connDone := make(chan struct{}, attempts+1)
	addr, _ := serveWith(t, memstore.New("m", 0), store.Options{Logger: zap.New(core)}, nil, func(srv *store.Server) {
		store.SetConnDone(srv, func() { connDone <- struct{}{} })
	})
	for i := range attempts {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		err = wire.ClientHandshake(context.Background(), nc, []byte("guess"))
		nc.Close()
		if !errors.Is(err, storage.ErrUnauthorized) {
			t.Fatalf("attempt %d: %v, want ErrUnauthorized", i, err)
		}
	}
	for range attempts {
		<-connDone // each refusal is logged, or not, before its connection ends
	}
	if n := logs.FilterMessage("client refused: wrong cluster token").Len(); n != 7 {
		t.Fatalf("%d wrong-token handshakes logged %d warnings, want 7 (1st, 2nd, 4th ... 64th)", attempts, n)
	}
	ping(t, rawConn(t, addr), 1)
}
