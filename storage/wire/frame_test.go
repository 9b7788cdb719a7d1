package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ckptio/ckptio/storage"
)

func hashOf(s string) storage.Hash { return storage.Sum([]byte(s)) }

func encode(t testing.TB, id uint64, op Op, st Status, parts ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteFrame(&b, id, op, st, parts...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFrameRoundTripEveryOp(t *testing.T) {
	h := hashOf("a")
	hs := []storage.Hash{hashOf("a"), hashOf("b"), hashOf("c")}
	hsBytes, err := EncodeHashes(hs)
	if err != nil {
		t.Fatal(err)
	}
	delBytes, err := EncodeDelete(time.Unix(0, 1_700_000_000_123_456_789), hs)
	if err != nil {
		t.Fatal(err)
	}
	statJSON, err := EncodeStat(storage.Stat{ID: "s1", Usage: storage.Usage{Used: 10, Quota: 100, Blocks: 1, DiskFree: 5}})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{7}, 3<<20) // crosses growFrom
	hEmpty, hBig := hashOf(""), storage.Sum(big)
	tests := []struct {
		name  string
		id    uint64
		op    Op
		st    Status
		parts [][]byte
	}{
		{"ping", 1, OpPing, StatusOK, nil},
		{"put", 2, OpPutBlock, StatusOK, [][]byte{h[:], []byte("a")}},
		{"put empty block", 3, OpPutBlock, StatusOK, [][]byte{hEmpty[:]}},
		{"put large block", 4, OpPutBlock, StatusOK, [][]byte{hBig[:], big}},
		{"put reply", 2, OpPutBlock, StatusOK, [][]byte{EncodeCreated(true)}},
		{"get", 5, OpGetBlock, StatusOK, [][]byte{h[:]}},
		{"get reply", 5, OpGetBlock, StatusOK, [][]byte{[]byte("a")}},
		{"has", 6, OpHas, StatusOK, [][]byte{hsBytes}},
		{"has reply", 6, OpHas, StatusOK, [][]byte{EncodeHas([]bool{true, false, true})}},
		{"delete", 7, OpDelete, StatusOK, [][]byte{delBytes}},
		{"delete reply", 7, OpDelete, StatusOK, [][]byte{EncodeFreed(12345)}},
		{"stat", 8, OpStat, StatusOK, nil},
		{"stat reply", 8, OpStat, StatusOK, [][]byte{statJSON}},
		{"list", 11, OpList, StatusOK, [][]byte{EncodeList(h, 64)}},
		{"list reply", 11, OpList, StatusOK, [][]byte{hsBytes}},
		{"hello", 0, OpHello, StatusOK, [][]byte{make([]byte, NonceSize)}},
		{"max id", math.MaxUint64, OpPing, StatusOK, nil},
		{"unknown op", 9, Op(0x7f), StatusOK, [][]byte{[]byte("x")}},
	}
	for st := StatusNotFound; st <= StatusBusy; st++ {
		tests = append(tests, struct {
			name  string
			id    uint64
			op    Op
			st    Status
			parts [][]byte
		}{"status " + st.String(), 10, OpGetBlock, st, [][]byte{[]byte("msg " + st.String())}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := encode(t, tc.id, tc.op, tc.st, tc.parts...)
			want := bytes.Join(tc.parts, nil)
			if len(raw) != HeaderSize+len(want) {
				t.Fatalf("encoded %d bytes, want %d", len(raw), HeaderSize+len(want))
			}
			f, err := ReadFrame(bytes.NewReader(raw), 0)
			if err != nil {
				t.Fatal(err)
			}
			if f.ID != tc.id || f.Op != tc.op || f.Status != tc.st || int(f.Length) != len(want) {
				t.Fatalf("header = %+v, want id %d op %s status %s length %d", f.Header, tc.id, tc.op, tc.st, len(want))
			}
			if !bytes.Equal(f.Payload, want) {
				t.Fatal("payload differs")
			}
		})
	}
}

func TestHeaderLayout(t *testing.T) {
	raw := encode(t, 0x0102030405060708, OpDelete, StatusDiskFull, []byte("xyz"))
	want := []byte{0xCB, 2, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0x05, 3, 'x', 'y', 'z'}
	if !bytes.Equal(raw, want) {
		t.Fatalf("frame = % x, want % x", raw, want)
	}
	// The length is a full u64.
	var hb [HeaderSize]byte
	PutHeader(hb[:], Header{Length: 0x0102030405060708, ID: 9, Op: OpList})
	if got := hb[2:10]; !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("length bytes = % x", got)
	}
	if h, err := ParseHeader(hb[:]); err != nil || h.Length != 0x0102030405060708 || h.ID != 9 || h.Op != OpList {
		t.Fatalf("parse = %+v, %v", h, err)
	}
}

func TestPayloadCodecs(t *testing.T) {
	hs := []storage.Hash{hashOf("1"), hashOf("2")}
	p, err := EncodeHashes(hs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHashes(p)
	if err != nil || len(got) != 2 || got[0] != hs[0] || got[1] != hs[1] {
		t.Fatalf("hashes round trip = %v, %v", got, err)
	}
	if empty, err := DecodeHashes(nil); err != nil || len(empty) != 0 {
		t.Fatalf("empty hash list = %v, %v", empty, err)
	}
	held, err := DecodeHas(EncodeHas([]bool{false, true}), 2)
	if err != nil || held[0] || !held[1] {
		t.Fatalf("has round trip = %v, %v", held, err)
	}
	freed, err := DecodeFreed(EncodeFreed(1 << 40))
	if err != nil || freed != 1<<40 {
		t.Fatalf("freed round trip = %d, %v", freed, err)
	}
	for _, c := range []bool{true, false} {
		if got, err := DecodeCreated(EncodeCreated(c)); err != nil || got != c {
			t.Fatalf("created round trip %v = %v, %v", c, got, err)
		}
	}
	st := storage.Stat{ID: "x", Usage: storage.Usage{Used: 1, Quota: 2, Blocks: 3, DiskFree: 4}}
	sp, _ := EncodeStat(st)
	if got, err := DecodeStat(sp); err != nil || got != st {
		t.Fatalf("stat round trip = %+v, %v", got, err)
	}
	h, data, err := DecodePut(append(hs[0][:], 'z'))
	if err != nil || h != hs[0] || string(data) != "z" {
		t.Fatalf("put decode = %v %q %v", h, data, err)
	}
	for _, ns := range []time.Time{time.Time{}, time.Unix(0, 1), time.Unix(1_700_000_000, 42), time.Unix(0, math.MaxInt64)} {
		p, err := EncodeDelete(ns, hs)
		if err != nil {
			t.Fatal(err)
		}
		got, dhs, err := DecodeDelete(p)
		if err != nil || !got.Equal(ns) || got.IsZero() != ns.IsZero() || len(dhs) != 2 || dhs[1] != hs[1] {
			t.Fatalf("delete round trip of %v = %v %v %v", ns, got, dhs, err)
		}
	}
	if p, _ := EncodeDelete(time.Time{}, nil); !bytes.Equal(p, make([]byte, 8)) {
		t.Fatalf("unconditional delete of nothing = % x, want 8 zero bytes", p)
	}
	// Times the field cannot carry are sent as the nearest that deletes as
	// little: before 1970 as 1 ns, after 2262 as the largest.
	for ns, want := range map[time.Time]time.Time{
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC): time.Unix(0, 1),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC): time.Unix(0, math.MaxInt64),
	} {
		p, _ := EncodeDelete(ns, nil)
		if got, _, err := DecodeDelete(p); err != nil || !got.Equal(want) {
			t.Fatalf("delete not since %v sent as %v, %v; want %v", ns, got, err, want)
		}
	}
	after, limit, err := DecodeList(EncodeList(hs[1], 64))
	if err != nil || after != hs[1] || limit != 64 {
		t.Fatalf("list round trip = %v %d %v", after, limit, err)
	}
	if _, limit, _ := DecodeList(EncodeList(hs[1], 1<<40)); limit != MaxBatch {
		t.Fatalf("list limit 2^40 decoded as %d, want MaxBatch", limit)
	}
	if _, limit, _ := DecodeList(EncodeList(hs[1], -5)); limit != 0 {
		t.Fatalf("list limit -5 decoded as %d, want 0", limit)
	}
	asc := []storage.Hash{{1}, {2}, {3}}
	ascBytes, _ := EncodeHashes(asc)
	if got, err := DecodeListReply(ascBytes, storage.Hash{}, 3); err != nil || len(got) != 3 || got[2] != asc[2] {
		t.Fatalf("list reply = %v, %v", got, err)
	}
	if got, err := DecodeListReply(nil, asc[0], 3); err != nil || len(got) != 0 {
		t.Fatalf("empty list reply = %v, %v", got, err)
	}

	bad := []struct {
		name string
		err  error
	}{
		{"put short", func() error { _, _, err := DecodePut(make([]byte, 31)); return err }()},
		{"get short", func() error { _, err := DecodeHash(make([]byte, 31)); return err }()},
		{"get long", func() error { _, err := DecodeHash(make([]byte, 33)); return err }()},
		{"hashes not multiple", func() error { _, err := DecodeHashes(make([]byte, 33)); return err }()},
		{"hashes over batch", func() error { _, err := DecodeHashes(make([]byte, (MaxBatch+1)*32)); return err }()},
		{"encode over batch", func() error { _, err := EncodeHashes(make([]storage.Hash, MaxBatch+1)); return err }()},
		{"has reply short", func() error { _, err := DecodeHas([]byte{1}, 2); return err }()},
		{"has reply byte 2", func() error { _, err := DecodeHas([]byte{2}, 1); return err }()},
		{"created empty", func() error { _, err := DecodeCreated(nil); return err }()},
		{"created 2", func() error { _, err := DecodeCreated([]byte{2}); return err }()},
		{"freed short", func() error { _, err := DecodeFreed(make([]byte, 7)); return err }()},
		{"freed negative", func() error { _, err := DecodeFreed(bytes.Repeat([]byte{0xff}, 8)); return err }()},
		{"stat not json", func() error { _, err := DecodeStat([]byte("{")); return err }()},
		{"delete short", func() error { _, _, err := DecodeDelete(make([]byte, 7)); return err }()},
		{"delete hashes not multiple", func() error { _, _, err := DecodeDelete(make([]byte, 8+33)); return err }()},
		{"delete time above int64", func() error { _, _, err := DecodeDelete(bytes.Repeat([]byte{0xff}, 8)); return err }()},
		{"delete over batch", func() error { _, err := EncodeDelete(time.Time{}, make([]storage.Hash, MaxBatch+1)); return err }()},
		{"list short", func() error { _, _, err := DecodeList(make([]byte, 35)); return err }()},
		{"list long", func() error { _, _, err := DecodeList(make([]byte, 37)); return err }()},
		{"list reply not multiple", func() error { _, err := DecodeListReply(make([]byte, 33), storage.Hash{}, 5); return err }()},
		{"list reply over max", func() error { _, err := DecodeListReply(ascBytes, storage.Hash{}, 2); return err }()},
		{"list reply not after cursor", func() error { _, err := DecodeListReply(ascBytes, asc[0], 3); return err }()},
		{"list reply descending", func() error {
			p := append(append([]byte(nil), asc[1][:]...), asc[0][:]...)
			_, err := DecodeListReply(p, storage.Hash{}, 3)
			return err
		}()},
		{"list reply zero hash", func() error { _, err := DecodeListReply(make([]byte, 32), storage.Hash{}, 3); return err }()},
	}
	for _, tc := range bad {
		if !errors.Is(tc.err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, tc.err)
		}
		if StatusFor(tc.err) != StatusBadRequest {
			t.Errorf("%s: status = %s, want bad request", tc.name, StatusFor(tc.err))
		}
	}
	_, _, err = DecodePut(make([]byte, 32+storage.MaxBlockSize+1))
	if !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("put above MaxBlockSize: %v", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	good := encode(t, 1, OpPutBlock, StatusOK, make([]byte, 100))
	announce := func(n uint64) []byte {
		var hb [HeaderSize]byte
		PutHeader(hb[:], Header{Length: n, ID: 42, Op: OpPutBlock})
		return hb[:]
	}
	badMagic := append([]byte(nil), good...)
	badMagic[0] = 'G'
	badVersion := append([]byte(nil), good...)
	badVersion[1] = 9
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"truncated header", good[:7], 0, io.ErrUnexpectedEOF},
		{"truncated payload", good[:HeaderSize+50], 0, io.ErrUnexpectedEOF},
		{"header only", good[:HeaderSize], 0, io.ErrUnexpectedEOF},
		{"announces 4 GiB", announce(1<<32 - 1), 0, ErrFrameTooLarge},
		{"announces 100 GiB", announce(100 << 30), 0, ErrFrameTooLarge},
		{"announces 2^64-1", announce(math.MaxUint64), 0, ErrFrameTooLarge},
		{"one above the limit", announce(DefaultMaxPayload + 1), 0, ErrFrameTooLarge},
		{"above custom limit", good, 99, ErrFrameTooLarge},
		{"bad magic", badMagic, 0, ErrBadMagic},
		{"bad version", badVersion, 0, ErrBadVersion},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, ErrBadMagic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadFrame(bytes.NewReader(tc.in), tc.max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == ErrFrameTooLarge && (f.Payload != nil || f.ID == 0) {
				t.Fatalf("too-large frame: payload %d bytes, id %d; want header only", len(f.Payload), f.ID)
			}
		})
	}
	// At the limit exactly is fine.
	if _, err := ReadFrame(bytes.NewReader(good), 100); err != nil {
		t.Fatalf("frame at the limit: %v", err)
	}
}

// A frame announcing the largest allowed payload and sending a few bytes
// must not make the reader allocate the whole payload.
func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	var hb [HeaderSize]byte
	PutHeader(hb[:], Header{Length: DefaultMaxPayload, ID: 1, Op: OpPutBlock})
	in := append(hb[:], make([]byte, 10)...)
	before := memAlloc()
	_, err := ReadFrame(bytes.NewReader(in), 0)
	after := memAlloc()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
	if got := after - before; got > 2*growFrom {
		t.Fatalf("allocated %d bytes for a 10-byte payload", got)
	}
}

func TestStatusErrors(t *testing.T) {
	sentinels := map[Status]error{
		StatusNotFound:      storage.ErrNotFound,
		StatusQuotaExceeded: storage.ErrQuotaExceeded,
		StatusDiskFull:      storage.ErrDiskFull,
		StatusHashMismatch:  storage.ErrHashMismatch,
		StatusTooLarge:      storage.ErrTooLarge,
		StatusBadRequest:    storage.ErrBadRequest,
		StatusUnknownOp:     ErrUnknownOp,
		StatusUnauthorized:  storage.ErrUnauthorized,
		StatusInternal:      ErrInternal,
		StatusClosed:        storage.ErrClosed,
		StatusBusy:          ErrBusy,
	}
	for st, sentinel := range sentinels {
		msg := "memstore: thing 3fa2: " + sentinel.Error()
		err := ErrorFor(st, []byte(msg))
		if !errors.Is(err, sentinel) {
			t.Errorf("%s: ErrorFor does not match %v", st, sentinel)
		}
		if err.Error() != msg {
			t.Errorf("%s: message %q, want %q", st, err.Error(), msg)
		}
		if got := StatusFor(err); got != st {
			t.Errorf("%s: StatusFor(ErrorFor) = %s", st, got)
		}
		wrapped := errors.Join(errors.New("disk: x"), sentinel)
		if got := StatusFor(wrapped); got != st {
			t.Errorf("%s: StatusFor(wrapped sentinel) = %s", st, got)
		}
	}
	if ErrorFor(StatusOK, nil) != nil || StatusFor(nil) != StatusOK {
		t.Error("ok is not nil")
	}
	if got := StatusFor(errors.New("boom")); got != StatusInternal {
		t.Errorf("plain error -> %s, want internal", got)
	}
	if got := StatusFor(ErrFrameTooLarge); got != StatusTooLarge {
		t.Errorf("frame too large -> %s", got)
	}
	if err := ErrorFor(Status(200), []byte("?")); !errors.Is(err, ErrInternal) {
		t.Errorf("unknown status: %v", err)
	}
	if err := ErrorFor(StatusNotFound, nil); err.Error() != storage.ErrNotFound.Error() {
		t.Errorf("empty message: %q", err.Error())
	}
	long := strings.Repeat("é", MaxMessage)
	if m := Message(long); len(m) > MaxMessage || !strings.HasPrefix(long, m) {
		t.Errorf("message cut to %d bytes, not a prefix", len(m))
	}
	if m := Message("a\xffb"); m != "a\uFFFDb" {
		t.Errorf("invalid utf-8 kept: %q", m)
	}
}

func memAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}
