package manager

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/ckptio/ckptio/storage/catalog"
)

// Txns lists the transactions in flight (begun, and not committed,
// aborted or expired), oldest first.
func (m *Manager) Txns() ([]catalog.Txn, error) {
	out := []catalog.Txn{}
	err := m.db.View(func(tx *bolt.Tx) error {
		now := m.now()
		return tx.Bucket(bucketTxns).ForEach(func(k, v []byte) error {
			var t catalog.Txn
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("manager: catalog: txn %s: %w", k, err)
			}
			if !now.After(t.Expires) {
				out = append(out, t)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("manager: listing transactions: %w", err)
	}
	slices.SortFunc(out, func(a, b catalog.Txn) int {
		if c := a.Began.Compare(b.Began); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
