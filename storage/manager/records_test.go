package manager

import (
	"bytes"
	"testing"

	"github.com/ckptio/ckptio/storage/catalog"
)

// FuzzDecodeRecord: decodeRecord never panics on bytes read from a store,
// and what it accepts is what its name says and encodes back losslessly.
func FuzzDecodeRecord(f *testing.F) {
	job, _ := encodeRecord(recordHeader{Kind: kindJob, Job: "j", Seq: 3, LastVersion: 2,
		Retention: &catalog.Retention{KeepLast: 2}}, nil)
	live, _ := encodeRecord(recordHeader{Kind: kindVersion, Job: "j", Seq: 4, Version: 1,
		Info: &catalog.VersionInfo{Job: "j", Version: 1}}, []byte("manifest"))
	tomb, _ := encodeRecord(recordHeader{Kind: kindVersion, Job: "j", Seq: 5, Version: 1, Deleted: true}, nil)
	f.Add(jobRecordName("j"), job)
	f.Add(versionRecordName("j", 1), live)
	f.Add(versionRecordName("j", 1), tomb)
	part, _ := encodeRecord(recordHeader{Kind: kindPart, Job: "j", Seq: 4, Version: 1, Part: 2}, []byte("rest"))
	f.Add(partRecordName("j", 1, 2), part)
	f.Add(versionRecordName("j", 1), []byte("ckptrec1\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		h, body, err := decodeRecord(name, data)
		if err != nil {
			return
		}
		switch h.Kind {
		case kindJob:
			if name != jobRecordName(h.Job) || len(body) != 0 {
				t.Fatalf("job record %q accepted under name %q with %d body bytes", h.Job, name, len(body))
			}
		case kindVersion:
			if name != versionRecordName(h.Job, h.Version) || h.Deleted == (h.Info != nil) || (h.Parts > 0 && h.Size <= int64(len(body))) {
				t.Fatalf("version record %+v accepted under name %q", h, name)
			}
		case kindPart:
			if name != partRecordName(h.Job, h.Version, h.Part) || h.Info != nil || h.Deleted != (len(body) == 0) {
				t.Fatalf("part record %+v accepted under name %q", h, name)
			}
		default:
			t.Fatalf("kind %q accepted", h.Kind)
		}
		again, err := encodeRecord(h, body)
		if err != nil {
			t.Fatal(err)
		}
		h2, body2, err := decodeRecord(name, again)
		if err != nil || h2.Seq != h.Seq || !bytes.Equal(body2, body) {
			t.Fatalf("re-encoded record does not decode the same: %+v %v", h2, err)
		}
	})
}

// TestDecodeRecordRefuses: records that do not match their names, or mix
// a tombstone with a manifest, are refused.
func TestDecodeRecordRefuses(t *testing.T) {
	live, _ := encodeRecord(recordHeader{Kind: kindVersion, Job: "j", Seq: 4, Version: 1,
		Info: &catalog.VersionInfo{Job: "j", Version: 1}}, []byte("manifest"))
	if _, _, err := decodeRecord(versionRecordName("j", 1), live); err != nil {
		t.Fatalf("a good record: %v", err)
	}
	if _, _, err := decodeRecord(versionRecordName("j", 2), live); err == nil {
		t.Error("version 1's record accepted under version 2's name")
	}
	if _, _, err := decodeRecord(versionRecordName("k", 1), live); err == nil {
		t.Error("job j's record accepted under job k's name")
	}
	bad, _ := encodeRecord(recordHeader{Kind: kindVersion, Job: "j", Seq: 4, Version: 1, Deleted: true}, []byte("manifest"))
	if _, _, err := decodeRecord(versionRecordName("j", 1), bad); err == nil {
		t.Error("a tombstone with a manifest accepted")
	}
	if _, _, err := decodeRecord(versionRecordName("j", 1), []byte("not a record")); err == nil {
		t.Error("bytes without the magic accepted")
	}
}
