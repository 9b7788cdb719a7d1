package catalog

import (
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/ckptio/ckptio/storage/manifest"
)

// versionJSON is VersionInfo on the wire and in the catalog file: the meta
// keys ckptio knows as typed fields, the others in Meta.
type versionJSON struct {
	Schema    string        `json:"schema,omitempty"`
	Job       string        `json:"job"`
	Version   int64         `json:"version"`
	Created   time.Time     `json:"created"`
	Committed time.Time     `json:"committed"`
	Kind      manifest.Kind `json:"kind"`
	// Typed meta (MetaStep, MetaRanks, ...): absent when not recorded.
	Step           *int64            `json:"step,omitempty"`
	Ranks          int               `json:"ranks,omitempty"`
	Leaders        int               `json:"leaders,omitempty"`
	Regions        []string          `json:"regions,omitempty"`
	Encrypted      bool              `json:"encrypted"`
	Encryption     string            `json:"encryption,omitempty"`
	KeyFingerprint string            `json:"key_fingerprint,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	// Meta holds the keys without a field (and, in catalogs written before
	// the typed fields, every key).
	Meta          map[string]string `json:"meta,omitempty"`
	Objects       int               `json:"objects"`
	Blocks        int               `json:"blocks"`
	LogicalBytes  int64             `json:"logical_bytes"`
	NewBytes      int64             `json:"new_bytes"`
	SentBytes     int64             `json:"sent_bytes"`
	ManifestBytes int64             `json:"manifest_bytes"`
	// DedupRatio is LogicalBytes over NewBytes, 0 when the version stored
	// nothing new; written, never read.
	DedupRatio float64 `json:"dedup_ratio"`
	Status     string  `json:"status"`
	Pinned     bool    `json:"pinned"`
	Replicas   int     `json:"replicas"`
	Redundancy string  `json:"redundancy,omitempty"` // MetaRedundancy
	// Overhead is VersionInfo.Overhead; written, never read.
	Overhead  float64 `json:"overhead"`
	Protected bool    `json:"protected"`
}

// intMeta returns meta[key] as a number when it is one, written as
// strconv writes it (so the round trip is exact).
func intMeta(meta map[string]string, key string) (int64, bool) {
	s, ok := meta[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

// DedupRatio is the version's logical bytes over the new bytes it stored;
// 0 when it stored nothing new.
func (v VersionInfo) DedupRatio() float64 {
	if v.NewBytes == 0 {
		return 0
	}
	return float64(v.LogicalBytes) / float64(v.NewBytes)
}

// MarshalJSON writes the known meta keys as typed fields.
func (v VersionInfo) MarshalJSON() ([]byte, error) {
	j := versionJSON{
		Schema: v.Schema, Job: v.Job, Version: v.Version, Created: v.Created, Committed: v.Committed, Kind: v.Kind,
		Objects: v.Objects, Blocks: v.Blocks, LogicalBytes: v.LogicalBytes, NewBytes: v.NewBytes, SentBytes: v.SentBytes,
		ManifestBytes: v.ManifestBytes, Status: v.Status, Pinned: v.Pinned, Replicas: v.Replicas, Protected: v.Protected,
		DedupRatio: v.DedupRatio(), Overhead: v.Overhead(),
	}
	rest := maps.Clone(v.Meta)
	take := func(key string) { delete(rest, key) }
	if n, ok := intMeta(v.Meta, MetaStep); ok {
		j.Step = &n
		take(MetaStep)
	}
	if n, ok := intMeta(v.Meta, MetaRanks); ok && n > 0 && n <= 1<<31 {
		j.Ranks = int(n)
		take(MetaRanks)
	}
	if n, ok := intMeta(v.Meta, MetaLeaders); ok && n > 0 && n <= 1<<31 {
		j.Leaders = int(n)
		take(MetaLeaders)
	}
	if s, ok := v.Meta[MetaRegions]; ok && s != "" {
		j.Regions = strings.Split(s, ",")
		take(MetaRegions)
	}
	if s, ok := v.Meta[MetaEncrypted]; ok && s != "" {
		j.Encrypted, j.Encryption = true, s
		take(MetaEncrypted)
	}
	if s, ok := v.Meta[MetaFingerprint]; ok && s != "" {
		j.KeyFingerprint = s
		take(MetaFingerprint)
	}
	if n, err := ParseReplicas(v.Meta); err == nil {
		if _, ok := v.Meta[MetaReplicas]; ok && (j.Replicas == 0 || j.Replicas == n) {
			j.Replicas = n
			take(MetaReplicas)
		}
	}
	if s, ok := v.Meta[MetaRedundancy]; ok && s != "" {
		j.Redundancy = s
		take(MetaRedundancy)
	}
	for k, val := range v.Meta {
		if name, ok := strings.CutPrefix(k, MetaLabelPrefix); ok && name != "" {
			if j.Labels == nil {
				j.Labels = make(map[string]string)
			}
			j.Labels[name] = val
			take(k)
		}
	}
	if len(rest) > 0 {
		j.Meta = rest
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes, and the older form whose
// meta held every key as a string.
func (v *VersionInfo) UnmarshalJSON(b []byte) error {
	var j versionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*v = VersionInfo{
		Schema: j.Schema, Job: j.Job, Version: j.Version, Created: j.Created, Committed: j.Committed, Kind: j.Kind,
		Objects: j.Objects, Blocks: j.Blocks, LogicalBytes: j.LogicalBytes, NewBytes: j.NewBytes, SentBytes: j.SentBytes,
		ManifestBytes: j.ManifestBytes, Status: j.Status, Pinned: j.Pinned, Replicas: j.Replicas, Protected: j.Protected,
		Meta: maps.Clone(j.Meta),
	}
	set := func(k, val string) {
		if v.Meta == nil {
			v.Meta = make(map[string]string)
		}
		v.Meta[k] = val
	}
	if j.Step != nil {
		set(MetaStep, strconv.FormatInt(*j.Step, 10))
	}
	if j.Ranks > 0 {
		set(MetaRanks, strconv.Itoa(j.Ranks))
	}
	if j.Leaders > 0 {
		set(MetaLeaders, strconv.Itoa(j.Leaders))
	}
	if len(j.Regions) > 0 {
		set(MetaRegions, strings.Join(j.Regions, ","))
	}
	if j.Encryption != "" {
		set(MetaEncrypted, j.Encryption)
	}
	if j.KeyFingerprint != "" {
		set(MetaFingerprint, j.KeyFingerprint)
	}
	if j.Redundancy != "" {
		set(MetaRedundancy, j.Redundancy)
		v.Redundancy = j.Redundancy
	}
	for name, val := range j.Labels {
		set(MetaLabelPrefix+name, val)
	}
	if _, ok := v.Meta[MetaReplicas]; !ok && j.Replicas > 1 {
		set(MetaReplicas, strconv.Itoa(j.Replicas))
	}
	return nil
}
