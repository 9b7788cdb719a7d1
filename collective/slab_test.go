package collective

import (
	"context"
	"errors"
	"testing"
)

// A pool's wait returns once every slab made is back, and only then: a
// slab whose block is still being stored holds it until ctx ends.
func TestSlabPoolWait(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	p := newSlabPool(2, 8)
	for range 2 {
		sl, err := p.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sl.hold() // a block put from it
		sl.release()
		sl.release() // the block is stored
	}
	if err := p.wait(cancelled); err != nil {
		t.Fatalf("every slab is back, yet wait returned %v", err)
	}

	p = newSlabPool(2, 8)
	held, _ := p.get(context.Background())
	held.hold()
	held.release() // the round is handed out; its block is not stored
	if err := p.wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("a slab still holds a block, yet wait returned %v", err)
	}
	held.release()
	if err := p.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}
