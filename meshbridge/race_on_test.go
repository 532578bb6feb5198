//go:build race

package meshbridge

// raceEnabled scales the 200 MB stream tests down: the race detector makes
// them take minutes.
const raceEnabled = true
