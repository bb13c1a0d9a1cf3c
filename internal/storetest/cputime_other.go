//go:build !unix

package storetest

import "time"

// CPUTime is not measured here: cpu-ns/key reads 0.
func CPUTime() time.Duration { return 0 }
