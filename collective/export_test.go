package collective

// SetMetaHook makes s rewrite the region description it sends its leader
// with f, so tests can make it malformed.
func SetMetaHook(s *Session, f func([]byte) []byte) { s.metaHook = f }
