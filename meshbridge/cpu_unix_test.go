//go:build unix

package meshbridge

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time this process has used, so benchmarks
// can report CPU cost per operation on a shared machine where wall-clock
// throughput depends on the neighbours.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
