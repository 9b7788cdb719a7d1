package collective

// SetMetaHook makes s rewrite the region description it sends its leader
// with f, so tests can make it malformed.
func SetMetaHook(s *Session, f func([]byte) []byte) { s.metaHook = f }

// CutRegions cuts and hashes regions as a checkpoint does, and returns
// how many segments it cut.
func CutRegions(s *Session, regions []Region) int { return len(s.cutRegions(regions)) }

var ReadLimit = readLimit

// HoldsSlabs reports whether s keeps gather buffers between operations.
func HoldsSlabs(s *Session) bool { return s.slabs != nil }
