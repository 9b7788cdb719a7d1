package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/ckptio/ckptio/storage/wire"
)

// ErrNoRecords: the store is older than the catalog-record ops (it answers
// them UnknownOp) or keeps no records.
var ErrNoRecords = errors.New("remote: store keeps no catalog records (upgrade its ckpt-store to one that does)")

func recordErr(err error) error {
	if errors.Is(err, wire.ErrUnknownOp) {
		return fmt.Errorf("%w: %w", ErrNoRecords, err)
	}
	return err
}

// PutRecord stores a catalog record under name, replacing any; it is
// durable on the store when PutRecord returns nil.
func (s *Store) PutRecord(ctx context.Context, name string, data []byte) error {
	p, err := wire.EncodePutRecord(name, data)
	if err != nil {
		return fmt.Errorf("store %s: put record: %w", s.addr, err)
	}
	if _, err := s.roundTrip(ctx, wire.OpPutRecord, p); err != nil {
		return fmt.Errorf("store %s: put record %s: %w", s.addr, name, recordErr(err))
	}
	return nil
}

// GetRecord returns the record name, or an error wrapping
// storage.ErrNotFound.
func (s *Store) GetRecord(ctx context.Context, name string) ([]byte, error) {
	if err := wire.ValidRecordName(name); err != nil {
		return nil, fmt.Errorf("store %s: get record: %w", s.addr, err)
	}
	f, err := s.roundTrip(ctx, wire.OpGetRecord, []byte(name))
	if err != nil {
		return nil, fmt.Errorf("store %s: get record %s: %w", s.addr, name, recordErr(err))
	}
	return f.Payload, nil
}

// ListRecords returns up to max record names after after ("" starts at the
// beginning), ascending; only an empty answer means the end.
func (s *Store) ListRecords(ctx context.Context, after string, max int) ([]string, error) {
	if max <= 0 {
		return nil, nil
	}
	f, err := s.roundTrip(ctx, wire.OpListRecords, wire.EncodeListRecords(after, max))
	if err != nil {
		return nil, fmt.Errorf("store %s: list records after %q: %w", s.addr, after, recordErr(err))
	}
	names, err := wire.DecodeRecordNames(f.Payload, after, max)
	if err != nil {
		return nil, fmt.Errorf("store %s: list records after %q: %w", s.addr, after, err)
	}
	return names, nil
}
