package verify_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/verify"
	"github.com/latchkey/latchkey/keyformat"
)

// The benchmarks here measure Verifier.Verify, the function every surface
// (POST /v1/verify, /v1/authorize, ext_authz, the reverse proxy, the
// management API's own authentication) calls, wired as serve wires it: usage
// recorder, brute-force guard and Prometheus observer. Compare sizes and
// cases with benchstat:
//
//	go test -run '^$' -bench 'Verify|IndexLoad' -benchmem -count 8 ./internal/verify > new.txt
//	benchstat -col /keys new.txt

// benchIndex returns an index of n keys and the secret of one of them.
// Only that one secret is real: the others get distinct digests directly,
// which is all the index sees.
func benchIndex(b *testing.B, n int) (*verify.Index, string) {
	b.Helper()
	ix, secrets := benchKeys(b, n, 1)
	return ix, secrets[0]
}

// benchKeys returns an index of n keys and the secrets of real of them, in
// random order. The other keys get distinct digests directly. Cycling
// through many real keys touches as much of the index as traffic from many
// clients would, rather than one key that stays in the CPU's cache.
// Indexes are kept for the next benchmark that asks for the same sizes:
// building one of a million keys takes seconds.
func benchKeys(b testing.TB, n, real int) (*verify.Index, []string) {
	b.Helper()
	benchCache.Lock()
	defer benchCache.Unlock()
	k := [2]int{n, real}
	if c, ok := benchCache.m[k]; ok {
		return c.ix, c.secrets
	}
	ix, secrets := buildKeys(b, n, real)
	if benchCache.m == nil {
		benchCache.m = map[[2]int]cachedIndex{}
	}
	benchCache.m[k] = cachedIndex{ix, secrets}
	return ix, secrets
}

type cachedIndex struct {
	ix      *verify.Index
	secrets []string
}

var benchCache struct {
	sync.Mutex
	m map[[2]int]cachedIndex
}

func buildKeys(b testing.TB, n, real int) (*verify.Index, []string) {
	b.Helper()
	ix := verify.NewIndex()
	var seed [8]byte
	for i := range n - real {
		binary.LittleEndian.PutUint64(seed[:], uint64(i))
		ix.Put(&latchkey.AccessKey{ID: fmt.Sprintf("LKIA%016d", i), Account: "acme", Application: fmt.Sprintf("app-%d", i/2),
			Status: latchkey.StatusActive, SecretDigest: sha256.Sum256(seed[:])})
	}
	secrets := make([]string, real)
	for i := range secrets {
		k := newKey(b, "acme", fmt.Sprintf("real-%d", i/2))
		ix.Put(k.AccessKey)
		secrets[i] = k.secret
	}
	rand.Shuffle(len(secrets), func(i, j int) { secrets[i], secrets[j] = secrets[j], secrets[i] })
	if ix.Len() != n {
		b.Fatalf("index has %d keys, want %d", ix.Len(), n)
	}
	return ix, secrets
}

// served returns a verifier over ix configured as serve configures it.
func served(ix *verify.Index) *verify.Verifier {
	v := verify.New(ix, verify.NewRecorder(&memSink{}, time.Hour, nil))
	v.Guard = verify.NewGuard(50, 30)
	v.Observer = metrics.New(ix)
	return v
}

// cpuClock measures the process's CPU time over a benchmark loop and
// reports it per operation as cpu-ns/op. On a machine shared with other
// work, wall-clock ns/op grows with the other work's share of the cores;
// CPU time per operation does not, so it is the figure to compare there.
type cpuClock struct {
	b     *testing.B
	start time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPU starts the clock: call it just before the b.Loop loop.
func startCPU(b *testing.B) cpuClock { return cpuClock{b, cpuTime()} }

func (c cpuClock) stop() {
	c.b.ReportMetric(float64(cpuTime()-c.start)/float64(c.b.N), "cpu-ns/op")
}

var benchSizes = []struct {
	name string
	n    int
}{{"keys=1e3", 1e3}, {"keys=1e6", 1e6}}

// BenchmarkVerifyValid verifies valid, unrestricted keys at 1,000 and
// 1,000,000 keys in the index, cycling through the same number of them
// (1,000) in both: the difference is what the index's size costs.
func BenchmarkVerifyValid(b *testing.B) { benchValid(b, func(n int) int { return 1000 }) }

// BenchmarkVerifyValidCold is BenchmarkVerifyValid cycling through 64Ki
// keys of the large index (tens of megabytes of entries, more than the
// CPU's caches hold): every call misses the cache, as with traffic spread
// evenly over very many keys.
func BenchmarkVerifyValidCold(b *testing.B) { benchValid(b, func(n int) int { return min(n, 1<<16) }) }

func benchValid(b *testing.B, real func(n int) int) {
	for _, size := range benchSizes {
		ix, secrets := benchKeys(b, size.n, real(size.n))
		// The secrets lie end to end in one string, read in order, as a
		// request's secret is in the CPU's cache when it is verified: the
		// index is what should miss the cache here, not the benchmark.
		all := strings.Join(secrets, "")
		b.Run(size.name, func(b *testing.B) {
			v := served(ix)
			req := verify.Request{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"}
			// Warm up: a key's first use allocates its per-minute
			// counters, which later calls (and flushes) reuse.
			for i := range secrets {
				req.Secret = all[i*keyformat.SecretLen : (i+1)*keyformat.SecretLen]
				v.Verify(&req)
			}
			// Collect the set-up's garbage now, not during the loop.
			runtime.GC()
			b.ReportAllocs()
			i := 0
			cpu := startCPU(b)
			for b.Loop() {
				req.Secret = all[i*keyformat.SecretLen : (i+1)*keyformat.SecretLen]
				if !v.Verify(&req).Valid() {
					b.Fatal("not valid")
				}
				if i++; i == len(secrets) {
					i = 0
				}
			}
			cpu.stop()
		})
	}
}

// BenchmarkVerifyValidParallel is BenchmarkVerifyValid from every core at
// once: what the shard locks and the usage cells cost under contention.
func BenchmarkVerifyValidParallel(b *testing.B) {
	ix, secrets := benchKeys(b, 1e3, 1e3)
	v := served(ix)
	b.ReportAllocs()
	cpu := startCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(secrets))
		req := verify.Request{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"}
		for pb.Next() {
			req.Secret = secrets[i]
			if !v.Verify(&req).Valid() {
				b.Fatal("not valid")
			}
			if i++; i == len(secrets) {
				i = 0
			}
		}
	})
	cpu.stop()
}

// restricted is what issue 11 calls a restricted key: 10 CIDRs, 5 referrer
// patterns, scopes and a rate limit (high enough never to refuse here).
var restricted = &latchkey.Restrictions{
	AllowedIPs: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "198.51.100.0/24", "203.0.113.0/24",
		"2001:db8::/32", "2001:db8:1::/48", "fd00::/8", "100.64.0.0/10", "192.0.2.0/24"},
	AllowedReferrers: []string{"https://www.example.com/*", "https://*.example.org/", "http://localhost:8080/*",
		"*://shop.example.net/cart", "https://*.example.com/app/*"},
	Scopes:    []string{"shipments:read", "shipments:write", "orders:*"},
	RateLimit: &latchkey.RateLimit{PerSecond: 1e9, Burst: 1e9, PerMinute: 1e9},
}

// BenchmarkVerifyRestricted is BenchmarkVerifyValid (1,000 keys) for keys
// that carry every kind of restriction; each call satisfies them all with
// the last item of each list.
func BenchmarkVerifyRestricted(b *testing.B) { benchRestricted(b, restricted, 1000) }

// benchRestricted verifies n keys that carry r with calls that satisfy
// restricted's every kind of restriction.
func benchRestricted(b *testing.B, r *latchkey.Restrictions, n int) {
	ix := verify.NewIndex()
	var reqs []verify.Request
	for i := range n {
		k := newKey(b, "acme", fmt.Sprintf("app-%d", i/2), func(k *latchkey.AccessKey) { k.Restrictions = r })
		ix.Put(k.AccessKey)
		reqs = append(reqs, verify.Request{Secret: k.secret, IP: netip.MustParseAddr("192.0.2.77"), UserAgent: "bench",
			Referrer: "https://api.example.com/app/page?x=1", Scope: "orders:write"})
	}
	verifyLoop(b, served(ix), reqs)
}

// BenchmarkVerifyRestrictedEach is BenchmarkVerifyRestricted for keys that
// carry one kind of its restrictions (or none), on 1 key and on 1,000: the
// difference between the two sizes is what reading each key's compiled
// restrictions out of cache costs, where a key's restrictions are in a
// core's cache only while one key is in use.
func BenchmarkVerifyRestrictedEach(b *testing.B) {
	only := func(r latchkey.Restrictions) *latchkey.Restrictions { return &r }
	for _, kind := range []struct {
		name string
		r    *latchkey.Restrictions
	}{
		{"none", nil},
		{"ips", only(latchkey.Restrictions{AllowedIPs: restricted.AllowedIPs})},
		{"referrers", only(latchkey.Restrictions{AllowedReferrers: restricted.AllowedReferrers})},
		{"scopes", only(latchkey.Restrictions{Scopes: restricted.Scopes})},
		{"rate", only(latchkey.Restrictions{RateLimit: restricted.RateLimit})},
		{"all", restricted},
	} {
		for _, size := range []struct {
			name string
			n    int
		}{{"keys=1", 1}, {"keys=1e3", 1000}} {
			b.Run(kind.name+"/"+size.name, func(b *testing.B) { benchRestricted(b, kind.r, size.n) })
		}
	}
}

// BenchmarkVerifyMetadata verifies 1,000 keys that carry an external ID
// and metadata and no restriction, and reads them from the decision as the
// gateway surfaces do (the header form is encoded when the key is indexed,
// not per call). Compare with BenchmarkVerifyValid/keys=1e3.
func BenchmarkVerifyMetadata(b *testing.B) {
	ix := verify.NewIndex()
	var reqs []verify.Request
	for i := range 1000 {
		k := newKey(b, "acme", fmt.Sprintf("app-%d", i/2), func(k *latchkey.AccessKey) {
			k.ExternalID = fmt.Sprintf("cus_%d", i)
			k.Metadata = json.RawMessage(`{"plan":"pro","limits":{"seats":5,"regions":["eu","us"]}}`)
		})
		ix.Put(k.AccessKey)
		reqs = append(reqs, verify.Request{Secret: k.secret, IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"})
	}
	v := served(ix)
	for i := range reqs { // warm up, as benchValid does
		v.Verify(&reqs[i])
	}
	runtime.GC()
	b.ReportAllocs()
	i := 0
	cpu := startCPU(b)
	for b.Loop() {
		res := v.Verify(&reqs[i])
		if !res.Valid() || res.Entry.ExternalID() == "" || res.Entry.MetadataHeader() == "" {
			b.Fatal(res.Code)
		}
		if i++; i == len(reqs) {
			i = 0
		}
	}
	cpu.stop()
}

// BenchmarkVerifyUnknown presents well-formed secrets that no key has, from
// no client address (so the guard never throttles): a digest and a miss.
func BenchmarkVerifyUnknown(b *testing.B) {
	for _, size := range benchSizes {
		ix, _ := benchKeys(b, size.n, 1000)
		b.Run(size.name, func(b *testing.B) {
			v := served(ix)
			reqs := make([]verify.Request, 1024)
			for i := range reqs {
				reqs[i] = verify.Request{Secret: newSecret(b)}
			}
			b.ReportAllocs()
			i := 0
			cpu := startCPU(b)
			for b.Loop() {
				if v.Verify(&reqs[i]).Code != latchkey.CodeNotFound {
					b.Fatal("found")
				}
				i = (i + 1) % len(reqs)
			}
			cpu.stop()
		})
	}
}

// BenchmarkVerifyWrongSecret presents a real access key ID with a secret
// that is not its own (Basic auth with the wrong secret).
func BenchmarkVerifyWrongSecret(b *testing.B) {
	ix := verify.NewIndex()
	k := newKey(b, "acme", "billing")
	ix.Put(k.AccessKey)
	v := served(ix)
	req := verify.Request{Secret: newSecret(b), AccessKeyID: k.ID}
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if v.Verify(&req).Code != latchkey.CodeNotFound {
			b.Fatal("found")
		}
	}
	cpu.stop()
}

func BenchmarkVerifyMalformed(b *testing.B) {
	ix, secret := benchIndex(b, 1e3)
	v := served(ix)
	req := verify.Request{Secret: flipLast(secret)}
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if v.Verify(&req).Code != latchkey.CodeMalformed {
			b.Fatal("not malformed")
		}
	}
	cpu.stop()
}

// BenchmarkVerifyFlood is a flood of random keys from one address, with the
// guard on as serve has it: past the guard's budget the address is answered
// THROTTLED before any lookup.
func BenchmarkVerifyFlood(b *testing.B) {
	ix, _ := benchKeys(b, 1e3, 1)
	v := served(ix)
	reqs := make([]verify.Request, 1024)
	for i := range reqs {
		reqs[i] = verify.Request{Secret: newSecret(b), IP: netip.MustParseAddr("198.51.100.9")}
	}
	b.ReportAllocs()
	i := 0
	cpu := startCPU(b)
	for b.Loop() {
		if c := v.Verify(&reqs[i]).Code; c != latchkey.CodeNotFound && c != latchkey.CodeThrottled {
			b.Fatal(c)
		}
		i = (i + 1) % len(reqs)
	}
	cpu.stop()
}

// BenchmarkIndexLoad builds an index of 1,000,000 application keys (two per
// application) as Sync does at start-up, from keys whose strings are
// allocated one by one as a store scan allocates them, and reports the heap
// the index keeps per key.
func BenchmarkIndexLoad(b *testing.B) {
	const n = 1_000_000
	var seed [8]byte
	var ms runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		ix := verify.NewIndex()
		for i := range n {
			binary.LittleEndian.PutUint64(seed[:], uint64(i))
			ix.Put(&latchkey.AccessKey{ID: fmt.Sprintf("LKIA%016d", i), Account: "default", Application: fmt.Sprintf("app-%07d", i/2),
				Status: latchkey.StatusActive, SecretDigest: sha256.Sum256(seed[:])})
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/n, "heap-B/key")
		runtime.KeepAlive(ix)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
}

// BenchmarkVerifyGC measures what the index costs the garbage collector
// under a verification loop, at 100,000 and 1,000,000 keys, from every
// core at once (so that no core is idle and the collector's work is paid
// for as in a busy server, not by idle-time workers). Each call also
// allocates 512 bytes of pointer-free garbage, about what serving a call
// over HTTP leaves behind, so that the collector runs as it does in a
// server. It reports, from runtime/metrics:
//
//   - scan-heap-B: the scannable heap (/gc/scan/heap:bytes), what each
//     collection has to mark through: for keys without rules it must not
//     grow with the number of keys;
//   - gc-cpu-%: the collector's share of the CPU used over the loop
//     (/cpu/classes/gc/total:cpu-seconds over /cpu/classes/total:cpu-seconds
//     less /cpu/classes/idle:cpu-seconds);
//   - gc-ns/op: the collector's CPU time per call;
//   - gc-cycles: the collections during the loop (and one at its end,
//     which brings the CPU figures up to date).
func BenchmarkVerifyGC(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"keys=1e5", 1e5}, {"keys=1e6", 1e6}} {
		// Not kept for other benchmarks: only this size's index is live.
		ix, secrets := buildKeys(b, size.n, 1000)
		b.Run(size.name, func(b *testing.B) {
			v := served(ix)
			for i := range secrets {
				v.Verify(&verify.Request{Secret: secrets[i], IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"})
			}
			runtime.GC()
			samples := []rtmetrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"},
				{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
			rtmetrics.Read(samples)
			gc0, total0, idle0, cycles0 := samples[1].Value.Float64(), samples[2].Value.Float64(), samples[3].Value.Float64(), samples[4].Value.Uint64()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(secrets))
				req := verify.Request{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"}
				var garbage []byte
				for pb.Next() {
					req.Secret = secrets[i]
					if !v.Verify(&req).Valid() {
						b.Fatal("not valid")
					}
					garbage = make([]byte, 512)
					if i++; i == len(secrets) {
						i = 0
					}
				}
				gcSink.Store(&garbage)
			})
			b.StopTimer()
			rtmetrics.Read(samples)
			scan := samples[0].Value.Uint64()
			runtime.GC()
			rtmetrics.Read(samples)
			gc := samples[1].Value.Float64() - gc0
			used := samples[2].Value.Float64() - total0 - (samples[3].Value.Float64() - idle0)
			b.ReportMetric(float64(scan), "scan-heap-B")
			b.ReportMetric(100*gc/used, "gc-cpu-%")
			b.ReportMetric(gc*1e9/float64(b.N), "gc-ns/op")
			b.ReportMetric(float64(samples[4].Value.Uint64()-cycles0), "gc-cycles")
		})
	}
}

var gcSink atomic.Pointer[[]byte]

// BenchmarkIndexLoad10M is BenchmarkIndexLoad at 10,000,000 keys, and also
// reports the process's resident memory per key (VmRSS, after returning
// freed memory to the system). It needs several GiB and about a minute:
// it runs only when asked for by name
// (-bench IndexLoad10M with LATCHKEY_BENCH_10M=1).
func BenchmarkIndexLoad10M(b *testing.B) {
	if os.Getenv("LATCHKEY_BENCH_10M") == "" {
		b.Skip("set LATCHKEY_BENCH_10M=1 to load 10,000,000 keys")
	}
	const n = 10_000_000
	var seed [8]byte
	var ms runtime.MemStats
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		runtime.ReadMemStats(&ms)
		before, rss0 := ms.HeapAlloc, vmRSS(b)
		ix := verify.NewIndex()
		for i := range n {
			binary.LittleEndian.PutUint64(seed[:], uint64(i))
			ix.Put(&latchkey.AccessKey{ID: fmt.Sprintf("LKIA%016d", i), Account: "default", Application: fmt.Sprintf("app-%07d", i/2),
				Status: latchkey.StatusActive, SecretDigest: sha256.Sum256(seed[:])})
		}
		runtime.GC()
		debug.FreeOSMemory()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/n, "heap-B/key")
		b.ReportMetric(float64(vmRSS(b)-rss0)/n, "rss-B/key")
		runtime.KeepAlive(ix)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
}

// vmRSS is the process's resident set size in bytes, from /proc.
func vmRSS(b *testing.B) uint64 {
	buf, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for line := range strings.Lines(string(buf)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkVerifyValidBesideFailures is BenchmarkVerifyValid/keys=1e3 with
// the guard holding a failure from another address, as in a server where
// some client sent a bad key within the last few minutes (the guard
// forgets an address a minute or more after its budget is full again).
func BenchmarkVerifyValidBesideFailures(b *testing.B) {
	ix, secrets := benchKeys(b, 1e3, 1e3)
	v := served(ix)
	if c := v.Verify(&verify.Request{Secret: newSecret(b), IP: netip.MustParseAddr("198.51.100.9")}).Code; c != latchkey.CodeNotFound {
		b.Fatal(c)
	}
	reqs := make([]verify.Request, len(secrets))
	for i, s := range secrets {
		reqs[i] = verify.Request{Secret: s, IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "bench"}
	}
	for i := range reqs { // warm up, as benchValid does
		v.Verify(&reqs[i])
	}
	runtime.GC()
	verifyLoop(b, v, reqs)
}

// BenchmarkVerifyFloodAddresses is a flood of unknown keys from a new
// IPv6 /64 each (a /32 holds 2^32 of them; the guard counts an IPv6
// client by its /64), past the guard's MaxAddresses: what each such call
// costs once the guard's table is full.
func BenchmarkVerifyFloodAddresses(b *testing.B) {
	ix, _ := benchKeys(b, 1e3, 1)
	v := served(ix)
	secret := newSecret(b)
	base := netip.MustParseAddr("2001:db8::1").As16()
	addr := func(i uint32) netip.Addr {
		a := base
		binary.BigEndian.PutUint32(a[4:8], i)
		return netip.AddrFrom16(a)
	}
	req := verify.Request{Secret: secret}
	var n uint32
	for ; n < uint32(v.Guard.MaxAddresses); n++ {
		req.IP = addr(n)
		v.Verify(&req)
	}
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		n++
		req.IP = addr(n)
		if c := v.Verify(&req).Code; c != latchkey.CodeNotFound {
			b.Fatal(c)
		}
	}
	cpu.stop()
}
