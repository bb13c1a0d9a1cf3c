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
		{"64 MiB: headroom 64 MiB is 100%", 64 * mib, 100},
		{"128 MiB: 64 MiB of headroom", 128 * mib, 50},
		{"256 MiB: 25%", 256 * mib, 25},
		{"a million keys", 300 * mib, 25},
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
