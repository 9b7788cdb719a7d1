package disk

// PauseCompaction defers (true) or resumes (false) the background
// compaction of a LayoutPack store: a store does it while the desktop's
// owner needs the machine (ckpt-store --quiet-hours, --pause-when-busy).
// A compaction in progress finishes its pack; the space of dead records is
// then reclaimed once resumed. Puts, gets and deletes are not affected.
// Other layouts do not compact; for them it does nothing. Safe for
// concurrent use.
func (s *Store) PauseCompaction(paused bool) {
	p, ok := s.impl.(*pack)
	if !ok {
		return
	}
	if p.paused.Swap(paused) && !paused {
		p.kickCompactor()
	}
}

// CompactionPaused reports whether PauseCompaction(true) is in effect: the
// store's background work (compaction, scrubs) waits.
func (s *Store) CompactionPaused() bool {
	p, ok := s.impl.(*pack)
	return ok && p.paused.Load()
}
