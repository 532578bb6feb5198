//go:build !race

package meshbridge

const raceEnabled = false
