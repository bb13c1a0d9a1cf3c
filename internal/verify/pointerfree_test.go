package verify_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// genScan hands the index n application keys made as they are scanned,
// two per application, so that no slice of them stays live.
type genScan struct {
	latchkey.Store
	n int
}

func (s genScan) ScanKeyIndex(ctx context.Context, fn func(*latchkey.AccessKey) error) error {
	var seed [8]byte
	for i := range s.n {
		binary.LittleEndian.PutUint64(seed[:], uint64(i))
		k := &latchkey.AccessKey{ID: fmt.Sprintf("LKIA%016d", i), Account: "default", Application: fmt.Sprintf("app-%07d", i/2),
			Status: latchkey.StatusActive, SecretDigest: keyformat.Sum(string(seed[:]))}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// scannableHeap is the heap the collector has to scan for pointers after
// a full collection.
func scannableHeap() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// loadedScannable is the scannable heap with an index of n keys loaded
// as serve loads them (Sync), a thousand of them in use (each with a
// usage slot).
func loadedScannable(t *testing.T, n int) uint64 {
	ix := verify.NewIndex()
	if got, err := ix.Sync(t.Context(), genScan{n: n}); err != nil || got != n {
		t.Fatalf("Sync = %d, %v", got, err)
	}
	v := served(ix)
	for i := range 1000 {
		k := newKey(t, "acme", fmt.Sprintf("real-%d", i/2))
		ix.Put(k.AccessKey)
		if !v.Verify(&verify.Request{Secret: k.secret, IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "test"}).Valid() {
			t.Fatalf("key %d not valid", i)
		}
	}
	s := scannableHeap()
	runtime.KeepAlive(ix)
	runtime.KeepAlive(v)
	return s
}

// TestIndexPointerFree: the index holds its keys without a pointer per key
// (records, tables, strings and usage slots are pointer-free chunks), so
// that a collection's marking does not grow with the number of keys: at
// ten million keys, a pointer a key would be ten million objects to mark
// at every cycle. What it scans is its fixed tables (about 400 KiB), the
// same at 50,000 keys as at 250,000.
func TestIndexPointerFree(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 300,000 keys")
	}
	const small, large = 50_000, 250_000
	s := loadedScannable(t, small)
	l := loadedScannable(t, large)
	perKey := (float64(l) - float64(s)) / (large - small)
	t.Logf("scannable heap %d KiB with %d keys, %d KiB with %d: %.3f bytes a key", s>>10, small, l>>10, large, perKey)
	// A pointer a key would be at least 8 bytes a key.
	if perKey >= 0.5 {
		t.Errorf("the index holds %.2f scannable bytes a key; want none", perKey)
	}
}

// BenchmarkIndexCollect is one full collection (runtime.GC) with an index
// of 100,000 and 1,000,000 keys loaded (and 5,000,000 with
// LATCHKEY_BENCH_5M=1: about 700 MiB): its process CPU (cpu-ns/op), which
// is what a collection costs whatever the host's load, and the
// scannable heap and heap objects the collector marks. An index without a
// pointer a key costs about the same at any size.
func BenchmarkIndexCollect(b *testing.B) {
	sizes := []struct {
		name string
		n    int
	}{{"keys=1e5", 1e5}, {"keys=1e6", 1e6}}
	if os.Getenv("LATCHKEY_BENCH_5M") != "" {
		sizes = append(sizes, struct {
			name string
			n    int
		}{"keys=5e6", 5e6})
	}
	for _, size := range sizes {
		b.Run(size.name, func(b *testing.B) {
			ix := verify.NewIndex()
			if got, err := ix.Sync(b.Context(), genScan{n: size.n}); err != nil || got != size.n {
				b.Fatalf("Sync = %d, %v", got, err)
			}
			runtime.GC()
			s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/objects:objects"}}
			clock := startCPU(b)
			for b.Loop() {
				runtime.GC()
			}
			clock.stop()
			metrics.Read(s)
			b.ReportMetric(float64(s[0].Value.Uint64()), "scan-heap-B")
			b.ReportMetric(float64(s[1].Value.Uint64()), "heap-objects")
			runtime.KeepAlive(ix)
		})
	}
}
