package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/wire"
)

// Records is a store's namespace of catalog records (wire OpPutRecord,
// OpGetRecord, OpListRecords): small named documents the manager keeps
// beside the blocks so its catalog can be rebuilt from the stores.
//
// Contract: PutRecord replaces the record atomically and durably (when it
// returns nil the record survives a crash); GetRecord returns the bytes or
// storage.ErrNotFound; ListRecords returns up to max names greater than
// after (bytewise), ascending; only an empty result means the end. All are
// safe for concurrent use. Names are valid (wire.ValidRecordName): the
// server checks before calling.
type Records interface {
	PutRecord(ctx context.Context, name string, data []byte) error
	GetRecord(ctx context.Context, name string) ([]byte, error)
	ListRecords(ctx context.Context, after string, max int) ([]string, error)
}

// DirRecords keeps records as one file each in a directory, the file
// named by the hex of the record's name (so the directory's sorted order
// is the names' bytewise order). A put writes a temporary file, fsyncs it,
// renames it over the record and fsyncs the directory.
type DirRecords struct {
	dir string
}

const recordTmp = ".tmp-"

// OpenRecords opens (creating if needed) the records directory dir and
// removes temporary files a crash left behind.
func OpenRecords(dir string) (*DirRecords, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: records: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: records: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), recordTmp) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &DirRecords{dir: dir}, nil
}

// PutRecord implements Records.
func (r *DirRecords) PutRecord(_ context.Context, name string, data []byte) error {
	f, err := os.CreateTemp(r.dir, recordTmp)
	if err != nil {
		return fmt.Errorf("store: record %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(r.dir, hex.EncodeToString([]byte(name))))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: record %s: %w", name, err)
	}
	return syncDir(r.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: records: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: records: sync directory: %w", err)
	}
	return nil
}

// GetRecord implements Records.
func (r *DirRecords) GetRecord(_ context.Context, name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(r.dir, hex.EncodeToString([]byte(name))))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: record %s: %w", name, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: record %s: %w", name, err)
	}
	return data, nil
}

// ListRecords implements Records. It reads the directory once per call,
// which suits the few thousand records of a catalog.
func (r *DirRecords) ListRecords(_ context.Context, after string, max int) ([]string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("store: records: %w", err)
	}
	var out []string
	for _, e := range ents {
		b, err := hex.DecodeString(e.Name())
		if err != nil || wire.ValidRecordName(string(b)) != nil {
			continue // a temporary or foreign file
		}
		if n := string(b); n > after {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// handleRecord runs one catalog-record request against s.opts.Records.
func (s *Server) handleRecord(ctx context.Context, f wire.Frame) ([][]byte, error) {
	rs := s.opts.Records
	switch f.Op {
	case wire.OpPutRecord:
		name, data, err := wire.DecodePutRecord(f.Payload)
		if err != nil {
			return nil, err
		}
		return nil, rs.PutRecord(ctx, name, data)
	case wire.OpGetRecord:
		name, err := wire.DecodeRecordName(f.Payload)
		if err != nil {
			return nil, err
		}
		data, err := rs.GetRecord(ctx, name)
		if err != nil {
			return nil, err
		}
		return [][]byte{data}, nil
	default:
		after, limit, err := wire.DecodeListRecords(f.Payload)
		if err != nil {
			return nil, err
		}
		names, err := rs.ListRecords(ctx, after, limit)
		if err != nil {
			return nil, err
		}
		if len(names) > limit {
			names = names[:limit]
		}
		p, err := wire.EncodeRecordNames(names)
		if err != nil {
			return nil, err
		}
		return [][]byte{p}, nil
	}
}
