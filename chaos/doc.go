// Package chaos kills and restarts the daemons of a ckptio cluster at
// random while a job checkpoints, and is the home of the chaos test
// (chaos_test.go), which shows that the whole system holds: heat
// checkpoints on 4 MPI ranks to 5 stores with 2 copies of every block
// while stores are SIGKILLed and restarted (some with their directory
// wiped, so they come back empty under a new ID) and the manager is
// SIGKILLed (once; in the long form of make chaos three times, down 10 to
// 30 s each, which the job waits through) and restarted on its address;
// in the long form its first kill also loses its data directory, and it
// comes back by rebuilding the catalog from the catalog records on the
// stores (ckpt-manager --recover), with every version committed before
// the loss. At the end every committed version verifies and the final
// checksum equals a failure-free run's.
//
// The package splits the chaos in two:
//
//   - Plan turns a seed into a schedule of events (kill store 3 at
//     1.2 s; start it again at 3.9 s, wiped; kill the manager at 4.1 s;
//     ...). It is a pure function of its Options, so a seed names
//     one schedule, and it keeps the invariants by construction: never
//     fewer than MinAlive stores running, the manager killed exactly
//     ManagerKills times, every store running when the manager recovers
//     a lost catalog (a store killed in that outage is back before it
//     ends, and not wiped), everything running again at the end.
//   - Run plays a schedule against a Fleet, the daemons, at the planned
//     offsets. A store the plan wipes loses its directory just before it
//     starts again, and only when the Fleet says that every block of
//     every committed version has a copy on the stores that answer (the
//     wiped one, being down, does not). Stores are wiped one at a time,
//     so no block ever loses every copy: a disk lost while the only other
//     copy is on another lost disk would destroy data that no system with
//     2 copies could keep, and would test the test, not ckptio.
//     Otherwise the store comes back with its blocks. A manager kill
//     that loses its data directory removes it at once, and the start
//     that ends that outage recovers the catalog from the stores.
//
// The timing of a run depends on the machine, so a seed replays the same
// decisions, not the same interleaving with the job.
//
// issue_test.go reproduces, on its own, the known issue the chaos test
// found. See docs/availability.md, "Chaos test", for how to run them and
// what they check.
package chaos
