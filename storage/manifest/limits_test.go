package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

// TestClaimedBodyTooLarge patches a message's body length to 1 TiB: the
// decoder refuses it before allocating.
func TestClaimedBodyTooLarge(t *testing.T) {
	b, err := Marshal(&Manifest{Job: "j", Blocks: object("x", -1, 50, 7, "s")})
	if err != nil {
		t.Fatal(err)
	}
	// Walk the messages: continuation, length, header, body.
	pos, patched := 0, false
	for pos+8 <= len(b) && !patched {
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		if n == 0 {
			break
		}
		meta := b[pos+8 : pos+8+n]
		mr := &messageReader{r: bytes.NewReader(b[pos:]), limit: MaxStreamBytes, refs: 1}
		msg, err := mr.Message()
		if err != nil {
			t.Fatal(err)
		}
		body := msg.BodyLen()
		if body > 0 {
			var want [8]byte
			binary.LittleEndian.PutUint64(want[:], uint64(body))
			if i := bytes.Index(meta, want[:]); i >= 0 {
				binary.LittleEndian.PutUint64(meta[i:], 1<<40)
				patched = true
			}
		}
		pos += 8 + n + int(body)
	}
	if !patched {
		t.Fatal("no body length found to patch")
	}
	_, err = Unmarshal(b)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
}

func TestBudgetAllocator(t *testing.T) {
	read := int64(100)
	a := &budgetAllocator{mem: memory.NewGoAllocator(), read: &read}
	buf := a.Allocate(allocSlack)
	buf = a.Reallocate(allocSlack+allocFactor*100, buf)
	a.Free(buf)
	if a.live != 0 {
		t.Fatalf("live %d after free", a.live)
	}
	defer func() {
		if recover() == nil || !a.exceeded.Load() {
			t.Fatal("allocation over budget was not refused")
		}
	}()
	a.Allocate(allocSlack + allocFactor*100 + 1)
}
