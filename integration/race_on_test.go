//go:build race

package integration

// raceEnabled builds the gateway under test with the race detector when
// the tests themselves run with -race.
const raceEnabled = true
