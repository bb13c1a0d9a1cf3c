package main

import "testing"

func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		live uint64
		want int
	}{
		{"nothing measured yet", 0, 100},
		{"a small index keeps Go's default", 10 * mib, 100},
		{"a million keys keeps it too", 150 * mib, 100},
		{"256 MiB: headroom 256 MiB is 100%", 256 * mib, 100},
		{"512 MiB: 256 MiB of headroom", 512 * mib, 50},
		{"1 GiB: 25%", 1024 * mib, 25},
		{"ten million keys", 1400 * mib, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcPercent(tt.live); got != tt.want {
				t.Errorf("gcPercent(%d MiB) = %d, want %d", tt.live/mib, got, tt.want)
			}
		})
	}
}
