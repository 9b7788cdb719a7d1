//go:build race

package client

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation figures mean nothing.
const raceEnabled = true
