package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/ckptio/ckptio/storage"
)

// Protocol constants; see the package documentation.
const (
	Magic      = 0xCB
	Version    = 2
	HeaderSize = 20

	// DefaultMaxPayload is the largest payload a reader accepts unless told
	// otherwise: a PutBlock of the largest block plus room to spare.
	DefaultMaxPayload = storage.MaxBlockSize + 4096
	// MaxBatch is the most hashes one Has or Delete request may carry, and
	// the most one List reply carries.
	MaxBatch = 1 << 16
	// MaxMessage is the longest error message a reply carries; longer ones
	// are cut.
	MaxMessage = 4096
	// Window is how many requests one connection carries at once by
	// default: a store runs this many per connection
	// (store.Options.MaxInFlight), a client keeps at most this many
	// outstanding (remote.Options.Window), and a writer's window per store
	// is at most this (client.WindowFor). More would only queue at the
	// store.
	Window = 64
)

// growFrom is the payload size up to which ReadFrame allocates the whole
// payload at once. Beyond it the buffer grows as bytes arrive, so a peer
// that announces a large frame and sends little makes the reader allocate
// little.
const growFrom = 1<<20 + 4096

// Op is a request kind.
type Op uint8

// Ops; see the package documentation for their payloads.
const (
	OpHello    Op = 0x00
	OpPing     Op = 0x01
	OpPutBlock Op = 0x02
	OpGetBlock Op = 0x03
	OpHas      Op = 0x04
	OpDelete   Op = 0x05
	OpStat     Op = 0x06
	OpList     Op = 0x07
	// Catalog records (records.go), since ckptio's catalog recovery; an
	// older store answers them UnknownOp.
	OpPutRecord   Op = 0x08
	OpGetRecord   Op = 0x09
	OpListRecords Op = 0x0A
	// Batches (batch.go), since ckptio's batched transport; an older
	// store answers them UnknownOp and a client falls back to PutBlock.
	OpPutBlocks Op = 0x0B
)

func (o Op) String() string {
	switch o {
	case OpHello:
		return "hello"
	case OpPing:
		return "ping"
	case OpPutBlock:
		return "put"
	case OpGetBlock:
		return "get"
	case OpHas:
		return "has"
	case OpDelete:
		return "delete"
	case OpStat:
		return "stat"
	case OpList:
		return "list"
	case OpPutRecord:
		return "put-record"
	case OpGetRecord:
		return "get-record"
	case OpListRecords:
		return "list-records"
	case OpPutBlocks:
		return "put-blocks"
	}
	return fmt.Sprintf("op(0x%02x)", uint8(o))
}

// Known reports whether o is an op of this protocol version.
func (o Op) Known() bool { return o <= OpPutBlocks }

// Header is a frame's fixed-size header, without magic and version.
type Header struct {
	Length uint64 // payload bytes
	ID     uint64
	Op     Op
	Status Status
}

// Frame is a decoded frame.
type Frame struct {
	Header
	Payload []byte
}

// PutHeader encodes h into b[:HeaderSize].
func PutHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	b[0] = Magic
	b[1] = Version
	binary.BigEndian.PutUint64(b[2:10], h.Length)
	binary.BigEndian.PutUint64(b[10:18], h.ID)
	b[18] = byte(h.Op)
	b[19] = byte(h.Status)
}

// ParseHeader decodes b[:HeaderSize], checking magic and version.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("wire: header of %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	if b[0] != Magic {
		return Header{}, fmt.Errorf("%w: first byte 0x%02x, want 0x%02x", ErrBadMagic, b[0], Magic)
	}
	if b[1] != Version {
		return Header{}, fmt.Errorf("%w: peer speaks version %d, this side %d", ErrBadVersion, b[1], Version)
	}
	return Header{
		Length: binary.BigEndian.Uint64(b[2:10]),
		ID:     binary.BigEndian.Uint64(b[10:18]),
		Op:     Op(b[18]),
		Status: Status(b[19]),
	}, nil
}

// ReadFrame reads one frame from r. It refuses a payload longer than
// maxPayload with an error wrapping ErrFrameTooLarge before allocating for
// it; the returned Frame then still holds the header, so a server can answer
// the offending request. maxPayload <= 0 means DefaultMaxPayload. A stream
// that ends inside the frame gives an error wrapping io.ErrUnexpectedEOF; a
// stream that ends cleanly before the frame gives io.EOF.
//
// ReadFrame reads exactly the frame's bytes, so a caller may switch from an
// unbuffered reader to a buffered one between frames.
func ReadFrame(r io.Reader, maxPayload int) (Frame, error) {
	return ReadFrameBuf(r, maxPayload, nil)
}

// ReadFrameBuf is ReadFrame reading the payload into get(h) when get is
// not nil and returns a slice of length h.Length (a recycled buffer, or
// the caller's own); otherwise it allocates as ReadFrame does. get is
// called only for a non-empty payload whose length passed the maxPayload
// check.
func ReadFrameBuf(r io.Reader, maxPayload int, get func(h Header) []byte) (Frame, error) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Frame{}, fmt.Errorf("wire: truncated header: %w", err)
		}
		return Frame{}, err
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Header: h}
	// Compared as u64, before anything is allocated: a header may announce
	// any length up to 2^64-1.
	if h.Length > uint64(maxPayload) {
		return f, fmt.Errorf("%w: %s frame id %d announces %d payload bytes, limit %d",
			ErrFrameTooLarge, h.Op, h.ID, h.Length, maxPayload)
	}
	if h.Length == 0 {
		return f, nil
	}
	n := int(h.Length)
	var buf []byte
	if get != nil {
		buf = get(h)
	}
	if len(buf) == n {
		_, err = io.ReadFull(r, buf)
		err = eofIsUnexpected(err)
	} else {
		buf, err = readPayload(r, n)
	}
	if err != nil {
		return Frame{Header: h}, fmt.Errorf("wire: %s frame id %d: truncated payload of %d bytes: %w",
			h.Op, h.ID, h.Length, err)
	}
	f.Payload = buf
	return f, nil
}

// readPayload reads exactly n bytes, allocating at most about twice what
// actually arrived.
func readPayload(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, growFrom))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, eofIsUnexpected(err)
	}
	for len(buf) < n {
		next := make([]byte, min(n, 2*len(buf)))
		copy(next, buf)
		if _, err := io.ReadFull(r, next[len(buf):]); err != nil {
			return nil, eofIsUnexpected(err)
		}
		buf = next
	}
	return buf, nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteFrame writes one frame whose payload is the concatenation of parts,
// with a single vectored write when w is a network connection. It does not
// retain parts. Callers that share w between goroutines serialize calls.
func WriteFrame(w io.Writer, id uint64, op Op, st Status, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var hb [HeaderSize]byte
	PutHeader(hb[:], Header{Length: uint64(n), ID: id, Op: op, Status: st})
	if len(parts) == 0 || n == 0 {
		_, err := w.Write(hb[:])
		return err
	}
	if len(parts) == 1 && len(parts[0]) <= 4096 {
		// One small write rather than two.
		b := make([]byte, 0, HeaderSize+n)
		_, err := w.Write(append(append(b, hb[:]...), parts[0]...))
		return err
	}
	bufs := make(net.Buffers, 0, 1+len(parts))
	bufs = append(bufs, hb[:])
	for _, p := range parts {
		if len(p) > 0 {
			bufs = append(bufs, p)
		}
	}
	_, err := bufs.WriteTo(w)
	return err
}

// WriteError writes a reply with a non-OK status and msg as its message,
// cut to MaxMessage bytes of valid UTF-8.
func WriteError(w io.Writer, id uint64, op Op, st Status, msg string) error {
	return WriteFrame(w, id, op, st, []byte(Message(msg)))
}
