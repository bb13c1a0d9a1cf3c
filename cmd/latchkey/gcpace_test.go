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
		{"512 MiB: headroom 213 1/3 MiB", 512 * mib, 42},
		{"768 MiB: headroom 170 2/3 MiB", 768 * mib, 23},
		{"1 GiB: headroom 128 MiB", 1024 * mib, 13},
		{"ten million keys: 128 MiB", 1400 * mib, 10},
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
