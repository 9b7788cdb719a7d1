// Package desktop tells a store when the desktop it runs on is its
// owner's: during quiet hours (QuietHours, local time), or while the
// desktop's own CPU or disk is busy (Monitor, from /proc/stat and
// /proc/diskstats over the interval since its last check). A store then
// reports itself busy in its heartbeat, and the manager defers background
// work on it (repair copies, garbage collection); checkpoint writes and
// restores go on.
//
// # What busy means
//
// CPU: the share of all CPUs' time, since the last check, spent neither
// idle nor waiting for I/O, less the store process's own CPU time
// (/proc/self/stat). Disk: for each block device but loop, ram and zram
// devices, the share of wall time it had I/O in flight (the io_ticks
// column of /proc/diskstats); the busiest device counts. The store's own
// disk I/O is not subtracted: the kernel does not say which process kept
// a disk busy. Either share at or over Options.Threshold makes the
// desktop busy. The first check has no interval yet and counts only the
// quiet hours.
package desktop
