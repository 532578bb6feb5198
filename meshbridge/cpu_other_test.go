//go:build !unix

package meshbridge

import "time"

func processCPU() time.Duration { return 0 }
