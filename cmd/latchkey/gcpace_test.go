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
		{"512 MiB: headroom 181 1/3 MiB", 512 * mib, 36},
		{"768 MiB: headroom 106 2/3 MiB", 768 * mib, 14},
		{"1 GiB: headroom 32 MiB", 1024 * mib, 4},
		{"ten million keys: 32 MiB", 1400 * mib, 3},
		{"a hundred million keys: at least 1%", 14000 * mib, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcPercent(tt.live); got != tt.want {
				t.Errorf("gcPercent(%d MiB) = %d, want %d", tt.live/mib, got, tt.want)
			}
		})
	}
}

func TestGCHeadroom(t *testing.T) {
	const mib = 1 << 20
	// The headroom never grows with the live heap, and stays within its
	// bounds.
	last := uint64(gcMaxHeadroom)
	for live := uint64(0); live <= 2048*mib; live += 16 * mib {
		h := gcHeadroom(live)
		if h > last || h < gcMinHeadroom || h > gcMaxHeadroom {
			t.Fatalf("gcHeadroom(%d MiB) = %d MiB after %d MiB", live/mib, h/mib, last/mib)
		}
		last = h
	}
}
