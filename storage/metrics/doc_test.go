package metrics

import (
	"context"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/wire"
)

// docRow matches a metric's row in docs/metrics.md: name, type, labels.
var docRow = regexp.MustCompile("^\\| `(ckpt_[a-z_]+)` \\| ([a-z]+) \\|([^|]*)\\|")

// TestMetricsDocumented fails when a metric the daemons register is not
// in docs/metrics.md, or the document lists one they do not, or its type
// or labels differ.
func TestMetricsDocumented(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewStore(reg)
	RegisterUsage(reg, func(context.Context) (storage.Stat, error) {
		return storage.Stat{ID: "s1", Usage: storage.Usage{Used: 1, Quota: 2}}, nil
	})
	m := NewManager(reg)
	RegisterStores(reg, func() []catalog.StoreInfo {
		return []catalog.StoreInfo{{Heartbeat: catalog.Heartbeat{ID: "s1", Addr: "h:1"}, Alive: true}}
	})
	// A labelled metric shows only once it has a sample: touch them all.
	s.Request(wire.OpPutBlock, wire.StatusQuotaExceeded, 10, 0, time.Millisecond)
	s.Synced("data", time.Millisecond, errors.New("eio"))
	s.Connection("accepted")
	m.Committed("j", time.Millisecond, nil)
	m.Committed("", time.Millisecond, errors.New("no such transaction"))
	m.GCDone(catalog.GCReport{FreedBytes: 1}, nil)
	m.RepairDone(catalog.RepairReport{Copies: 1, CopiedBytes: 1}, nil)
	m.Request("GET /v1/ping", 200, time.Millisecond)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		registered[f.GetName()] = f
	}

	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		row := docRow.FindStringSubmatch(line)
		if row == nil {
			continue
		}
		name, typ := row[1], row[2]
		var labels []string
		for _, l := range strings.Split(row[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		documented[name] = true
		f := registered[name]
		if f == nil {
			t.Errorf("docs/metrics.md lists %s, which no daemon registers", name)
			continue
		}
		if got := strings.ToLower(f.GetType().String()); got != typ {
			t.Errorf("docs/metrics.md says %s is a %s; it is a %s", name, typ, got)
		}
		var got []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			got = append(got, l.GetName())
		}
		slices.Sort(got)
		slices.Sort(labels)
		if !slices.Equal(got, labels) {
			t.Errorf("docs/metrics.md gives %s the labels %v; it has %v", name, labels, got)
		}
	}
	for name := range registered {
		if !documented[name] {
			t.Errorf("%s is registered but missing from docs/metrics.md: add a row to its table", name)
		}
	}
	if len(documented) < 20 {
		t.Errorf("only %d metrics found in docs/metrics.md: has its table format changed?", len(documented))
	}
}
