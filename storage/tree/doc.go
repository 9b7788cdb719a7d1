// Package tree keeps directory trees as checkpoint state: it captures
// files, directories and symlinks into a version (Scan, then Write through
// a version.Writer), writes a version's tree back (Extract), rolls a live
// tree back to a version (Rollback), and compares two versions (Diff).
// The entries' format is storage/manifest's (format 2).
//
// # Capture
//
// Scan walks the given paths without following symlinks: a directory
// (even empty) and a symlink (its target as stored) become entries, a
// regular file an entry and its data, anything else (sockets, devices,
// FIFOs) is skipped with a warning. A file whose size, mtime, ctime and
// inode match its entry in the previous version is unchanged: Write
// references the previous version's blocks without reading it (restic's
// parent-snapshot rule; Options.ForceRead reads every file). Write asks
// the stores to confirm those blocks in one batched round (the version
// layer's reuse rule), and reads only the blocks they no longer hold. A
// changed file is read whole; the version writer references every block
// whose hash the previous version holds, so a file that only grew sends
// only its new blocks.
//
// Freeze makes a scan independent of the live files: it copies the files
// Write would read (a reflink where the file system can, else a copy)
// into a directory, so that an asynchronous checkpoint captures the files
// as they were when it was called.
//
// # Extraction
//
// Extract writes a tree under a directory through an os.Root, so no name
// leads outside it, whether by "..", an absolute name, or a symlink met on
// the way (an existing one or one the tree holds: symlinks are made last).
// Files are written to a temporary name, fsynced and renamed; modes (with
// setuid, setgid and sticky) and mtimes are set exactly, directories'
// last. Existing files are not overwritten unless asked, and that is
// checked before anything is written.
//
// # Rollback
//
// Rollback makes live paths equal to a version's tree, in place: what the
// version does not hold is removed, a file whose stat still matches is
// left alone, any other is compared block by block with the version's
// hashes, and only blocks that differ are read from the stores; appended
// bytes are truncated away. It is idempotent, so a rollback cut short is
// completed by running it again.
package tree
