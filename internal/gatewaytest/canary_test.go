package gatewaytest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/extauthz"
	"github.com/latchkey/latchkey/internal/gatewaytest"
	"github.com/latchkey/latchkey/internal/manage"
	"github.com/latchkey/latchkey/internal/proxy"
	"github.com/latchkey/latchkey/keyformat"
)

// alert is a canary.triggered delivery as the receiver got it.
type alert struct {
	Type string             `json:"type"`
	Data manage.CanaryAlert `json:"data"`
}

// receiver is a webhook endpoint that checks each delivery's Standard
// Webhooks signature itself (HMAC-SHA256 over "id.timestamp.body" with the
// base64-decoded whsec_ key), not with latchkey's own verifier.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []alert
	signal chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(rc.secretNow(), "whsec_"))
	if err != nil {
		rc.t.Errorf("webhook secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !slices.Contains(strings.Fields(r.Header.Get("webhook-signature")), want) {
		rc.t.Errorf("delivery %s: signature %q does not hold %q", r.Header.Get("webhook-id"), r.Header.Get("webhook-signature"), want)
	}
	var a alert
	if err := json.Unmarshal(body, &a); err != nil {
		rc.t.Errorf("delivery body: %v", err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, a)
	rc.mu.Unlock()
	select {
	case rc.signal <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) secretNow() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.secret
}

// waitFor waits for an alert on surface and returns it.
func (rc *receiver) waitFor(t *testing.T, surface string) alert {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		rc.mu.Lock()
		for _, a := range rc.got {
			if a.Data.Surface == surface {
				rc.mu.Unlock()
				return a
			}
		}
		rc.mu.Unlock()
		select {
		case <-rc.signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no canary.triggered alert for surface %s", surface)
		}
	}
}

// plant writes a canary where real keys are kept: a .env in a config
// repository committed with git, and an ~/.aws-style credentials file. It
// returns the secrets as read back from the commit and from the file.
func plant(t *testing.T, id, secret string) (fromGit, fromFile string) {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is needed to plant a canary in a repository: %v", err)
	}
	repo := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(git, args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.test", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@example.test", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("init", "-q")
	if err := os.MkdirAll(filepath.Join(repo, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := fmt.Sprintf("# billing service\nLATCHKEY_ACCESS_KEY_ID=%s\nLATCHKEY_SECRET_ACCESS_KEY=%s\n", id, secret)
	if err := os.WriteFile(filepath.Join(repo, "deploy", ".env"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	run("add", "deploy/.env")
	run("commit", "-q", "-m", "billing config")
	secretRe := regexp.MustCompile(`lksk_[0-9A-Za-z]{46}`)
	fromGit = secretRe.FindString(string(run("show", "HEAD:deploy/.env")))

	creds := filepath.Join(t.TempDir(), ".aws", "credentials")
	if err := os.MkdirAll(filepath.Dir(creds), 0o700); err != nil {
		t.Fatal(err)
	}
	ini := fmt.Sprintf("[default]\nregion = eu-west-1\n\n[billing-prod]\naccess_key_id = %s\nsecret_access_key = %s\n", id, secret)
	if err := os.WriteFile(creds, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	fromFile = secretRe.FindString(string(b))
	if fromGit != secret || fromFile != secret {
		t.Fatal("the planted canary did not read back")
	}
	return fromGit, fromFile
}

// dump is a response as the client sees it, without what differs between
// any two responses (Date).
func dump(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	resp.Header.Del("Date")
	b, err := httputil.DumpResponse(resp, true)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCanaryEverySurface plants a canary in a git repository and in a
// credentials file, presents it on every surface (verify, forward auth,
// the reverse proxy, Envoy ext_authz over gRPC, the management API), and
// shows that each answer is byte for byte an unknown key's, that a signed
// canary.triggered alert arrives for each surface, that nothing is
// recorded as usage, and that refusals of canaries and unknown keys take
// the same time.
func TestCanaryEverySurface(t *testing.T) {
	env := gatewaytest.New(t, gatewaytest.Options{TrustedProxies: []string{"127.0.0.0/8"}})
	ctx := t.Context()
	svc := env.Service

	// Alerts: webhook receiver, dispatcher, the alerting goroutine.
	rc := &receiver{t: t, signal: make(chan struct{}, 1)}
	rs := httptest.NewServer(rc)
	t.Cleanup(rs.Close)
	dest := &manage.Destinations{Policy: latchkey.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	svc.Destinations = dest
	wh, err := svc.CreateWebhook(ctx, env.Operator, latchkey.DefaultAccount, latchkey.NewWebhook{URL: rs.URL, Events: []string{latchkey.EventCanaryTriggered}})
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secret = wh.Secret
	rc.mu.Unlock()
	disp := manage.NewDispatcher(svc.Store, nil)
	disp.Destinations = dest
	svc.Wake = disp.Wake
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	wg.Go(func() { disp.Run(runCtx) })
	alerts := manage.NewCanaryAlerts(svc)
	alerts.Window = 20 * time.Millisecond
	var countMu sync.Mutex
	counted := map[string]int{}
	alerts.Counted = func(s string) { countMu.Lock(); counted[s]++; countMu.Unlock() }
	env.Verifier.Canary = alerts
	wg.Go(func() { alerts.Run(runCtx) })

	// A real key and a canary of the same application; an unknown key.
	real := env.Key(t, "billing", nil)
	ck, err := svc.CreateAccessKey(ctx, env.Operator, latchkey.DefaultAccount, "billing", latchkey.NewAccessKey{Description: "canary: config repo", Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	if !keyformat.ValidID(ck.ID) || !keyformat.ValidSecret(ck.Secret) {
		t.Fatalf("canary %s does not have the shape of a key", ck.ID)
	}
	// A second real key still fits: the canary takes no place of the two.
	second := env.Key(t, "billing", nil)
	canary, _ := plant(t, ck.ID, ck.Secret)
	unknownID, _ := keyformat.NewID()
	unknown, err := keyformat.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.CreatePrincipal(ctx, env.Operator, latchkey.DefaultAccount, "ops", latchkey.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}

	api := httptest.NewServer(env.API.Handler())
	t.Cleanup(api.Close)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Latchkey-Access-Key-Id") != real.ID && r.Header.Get("X-Latchkey-Access-Key-Id") != second.ID {
			t.Errorf("upstream reached by a call with key %q", r.Header.Get("X-Latchkey-Access-Key-Id"))
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	p, err := proxy.New(proxy.Config{Upstream: u, API: env.API})
	if err != nil {
		t.Fatal(err)
	}
	px := httptest.NewServer(p)
	t.Cleanup(px.Close)
	authz := dialExtAuthz(t, env)

	httpCall := func(method, target string, h map[string]string, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		req.Header.Set("User-Agent", "canary-test/1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	type surface struct {
		name string
		use  func(secret, id string) string // the response, as comparable text
	}
	surfaces := []surface{
		{latchkey.SurfaceVerify, func(secret, id string) string {
			b, _ := json.Marshal(map[string]string{"key": secret, "access_key_id": id, "method": "GET", "path": "/invoices/7",
				"ip": "192.0.2.10", "user_agent": "canary-test/1"})
			return dump(t, httpCall("POST", api.URL+"/v1/verify", map[string]string{"Authorization": "Bearer " + admin.AccessKey.Secret, "Content-Type": "application/json"}, string(b)))
		}},
		{latchkey.SurfaceAuthorize, func(secret, id string) string {
			return dump(t, httpCall("GET", api.URL+"/v1/authorize", map[string]string{"Authorization": "Bearer " + secret,
				"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/invoices/7"}, ""))
		}},
		{latchkey.SurfaceProxy, func(secret, id string) string {
			return dump(t, httpCall("GET", px.URL+"/invoices/7", map[string]string{"X-Api-Key": secret}, ""))
		}},
		{latchkey.SurfaceExtAuthz, func(secret, id string) string {
			res, err := authz.Check(ctx, checkRequest("/invoices/7", secret))
			if err != nil {
				t.Fatal(err)
			}
			// Headers come in map order, different for any two calls:
			// compare them sorted.
			if d := res.GetDeniedResponse(); d != nil {
				slices.SortFunc(d.Headers, func(a, b *corev3.HeaderValueOption) int {
					return strings.Compare(a.GetHeader().GetKey(), b.GetHeader().GetKey())
				})
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}},
		{latchkey.SurfaceManagement, func(secret, id string) string {
			basic := base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
			return dump(t, httpCall("GET", api.URL+"/v1/applications", map[string]string{"Authorization": "Basic " + basic}, ""))
		}},
	}
	for _, s := range surfaces {
		t.Run(s.name, func(t *testing.T) {
			// The real key passes where it can (management refuses an
			// application key anyway), so a refusal below is the canary's.
			if s.name != latchkey.SurfaceManagement && s.use(real.Secret, real.ID) == s.use(unknown, unknownID) {
				t.Fatalf("%s: a real key is answered as an unknown one; the comparison below would prove nothing", s.name)
			}
			// Canary with and without its own ID, against an unknown key
			// with and without one.
			for _, withID := range []bool{false, true} {
				cid, uid := "", ""
				if withID {
					cid, uid = ck.ID, unknownID
				}
				got, want := s.use(canary, cid), s.use(unknown, uid)
				if got != want {
					t.Errorf("%s (access key ID given: %v): canary answered\n%q\nunknown key answered\n%q", s.name, withID, got, want)
				}
			}
			a := rc.waitFor(t, s.name)
			if a.Type != latchkey.EventCanaryTriggered || a.Data.AccessKeyID != ck.ID || a.Data.Application != "billing" ||
				a.Data.IP == "" || a.Data.At.IsZero() || a.Data.Uses < 1 {
				t.Errorf("%s: alert %+v", s.name, a)
			}
			if a.Data.UserAgent != "canary-test/1" {
				t.Errorf("%s: alert user agent %q", s.name, a.Data.UserAgent)
			}
			wantPath := "/invoices/7"
			if s.name == latchkey.SurfaceManagement {
				wantPath = "/v1/applications"
			}
			if a.Data.Path != wantPath {
				t.Errorf("%s: alert path %q, want %q", s.name, a.Data.Path, wantPath)
			}
		})
	}

	// Never authorized, never recorded as usage; an audit event per alert.
	k, err := svc.GetAccessKey(ctx, env.Operator, ck.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Canary || k.UseCount != 0 || k.RejectCount != 0 || k.LastUsed != nil || k.LastRejected != nil || len(k.Findings) != 0 {
		t.Errorf("canary after use: %+v", k)
	}
	evs, _, err := svc.ListAuditEvents(ctx, env.Operator, latchkey.AuditFilter{Action: latchkey.ActionCanaryTriggered, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < len(surfaces) {
		t.Errorf("%d canary audit events, want at least %d", len(evs), len(surfaces))
	}
	countMu.Lock()
	for _, s := range surfaces {
		if counted[s.name] < 2 {
			t.Errorf("metric for %s counted %d uses, want at least 2", s.name, counted[s.name])
		}
	}
	countMu.Unlock()

	// Timing, on every surface: forward auth with a client of its own
	// (one keep-alive connection), the others through the calls above.
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	authorize := func(t *testing.T, secret string) {
		req, _ := http.NewRequest("GET", api.URL+"/v1/authorize", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/invoices/7")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	t.Run("timing", func(t *testing.T) {
		canaryTiming(t, "authorize", 1000, func(secret string) { authorize(t, secret) }, canary, unknown)
		for _, s := range surfaces {
			if s.name == latchkey.SurfaceAuthorize {
				continue
			}
			canaryTiming(t, s.name, 300, func(secret string) { s.use(secret, "") }, canary, unknown)
		}
	})
}

// canaryTiming times pairs calls of a surface, each pair one call with the
// canary and one with an unknown key in random order, and compares the
// two distributions of response times: medians, Mann-Whitney U (as z),
// Kolmogorov-Smirnov D, and a sign test on the pairs (how often the
// canary's call was the slower of its pair, as z). Load from other
// processes comes in bursts that slow both calls of a pair alike, so the
// paired sign test is the one a loaded machine does not fool; the test
// fails when it finds the canary's call slower or faster in most pairs
// (|z| > 5, p < 1e-6) and the medians are more than 5% apart, or on a gross
// difference in the whole distributions.
func canaryTiming(t *testing.T, surface string, pairs int, call func(secret string), canary, unknown string) {
	t.Helper()
	timed := func(secret string) float64 {
		t0 := time.Now()
		call(secret)
		return float64(time.Since(t0))
	}
	for range 50 { // warm up
		call(canary)
		call(unknown)
	}
	c, u := make([]float64, 0, pairs), make([]float64, 0, pairs)
	slower, ties := 0, 0
	for range pairs {
		var dc, du float64
		if rand.IntN(2) == 0 {
			dc = timed(canary)
			du = timed(unknown)
		} else {
			du = timed(unknown)
			dc = timed(canary)
		}
		c, u = append(c, dc), append(u, du)
		switch {
		case dc > du:
			slower++
		case dc == du:
			ties++
		}
	}
	mc, mu := median(c), median(u)
	z := mannWhitneyZ(c, u)
	d := ksD(c, u)
	m := float64(pairs - ties)
	zs := (float64(slower) - m/2) / math.Sqrt(m/4)
	// The KS critical value at alpha = 0.001 for two samples of pairs.
	crit := 1.95 * math.Sqrt(2/float64(pairs))
	t.Logf("%s: %d pairs of refusals in random order: median canary %.1f µs, unknown %.1f µs (%+.1f%%); canary slower in %d of %d pairs, sign test z = %.2f; Mann-Whitney z = %.2f; KS D = %.3f (critical %.3f at alpha 0.001)",
		surface, pairs, mc/1e3, mu/1e3, 100*(mc-mu)/mu, slower, pairs-ties, zs, z, d, crit)
	if math.Abs(zs) > 5 && math.Abs(mc-mu) > 0.05*mu {
		t.Errorf("%s: canary refusals take a different time from unknown keys' in most pairs: sign test z = %.2f, medians %.1f µs vs %.1f µs", surface, zs, mc/1e3, mu/1e3)
	}
	if math.Abs(mc-mu) > 0.5*mu && d > 0.3 {
		t.Errorf("%s: canary refusals take a grossly different time: medians %.1f µs vs %.1f µs, KS D = %.3f", surface, mc/1e3, mu/1e3, d)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// mannWhitneyZ is the Mann-Whitney U statistic of a against b, as a
// standard normal z (ties get their mean rank; no tie correction of the
// variance, which only makes |z| smaller).
func mannWhitneyZ(a, b []float64) float64 {
	type obs struct {
		v    float64
		from int
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v, 0})
	}
	for _, v := range b {
		all = append(all, obs{v, 1})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	var ra float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].from == 0 {
				ra += rank
			}
		}
		i = j
	}
	n1, n2 := float64(len(a)), float64(len(b))
	u := ra - n1*(n1+1)/2
	mean := n1 * n2 / 2
	sd := math.Sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
	return (u - mean) / sd
}

// ksD is the two-sample Kolmogorov-Smirnov statistic: the largest distance
// between the two empirical distribution functions.
func ksD(a, b []float64) float64 {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	var i, j int
	var d float64
	for i < len(x) && j < len(y) {
		v := min(x[i], y[j])
		for i < len(x) && x[i] <= v {
			i++
		}
		for j < len(y) && y[j] <= v {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(x))-float64(j)/float64(len(y))))
	}
	return d
}

// dialExtAuthz serves Envoy's ext_authz on a real socket and returns a
// gRPC client of it.
func dialExtAuthz(t *testing.T, env *gatewaytest.Env) authv3.AuthorizationClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	(&extauthz.Server{API: env.API}).Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

func checkRequest(path, secret string) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Host: "api.example.test", Scheme: "http", Protocol: "HTTP/1.1",
		Headers: map[string]string{":method": "GET", ":path": path, ":authority": "api.example.test", "user-agent": "canary-test/1",
			"authorization": "Bearer " + secret}}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "192.0.2.10", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: h},
	}}
}
