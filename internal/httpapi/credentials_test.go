package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/internal/httpapi"
	"github.com/latchkey/latchkey/keyformat"
)

func request(t testing.TB, path, rawQuery string, hdr map[string]string) *http.Request {
	t.Helper()
	r := &http.Request{Method: "GET", URL: &url.URL{Path: path, RawQuery: rawQuery}, Header: http.Header{}}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

func TestCredentialFromRequest(t *testing.T) {
	secret := newSecret(t)
	id := newID(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name string
		hdr  map[string]string
		want httpapi.Credential
	}{
		{"nothing", nil, httpapi.Credential{}},
		{"bearer", map[string]string{"Authorization": "Bearer " + secret}, httpapi.Credential{Secret: secret, Present: true}},
		{"bearer, odd case and spaces", map[string]string{"Authorization": "bEaReR   " + secret + "  "}, httpapi.Credential{Secret: secret, Present: true}},
		{"bearer without a value", map[string]string{"Authorization": "Bearer"}, httpapi.Credential{Present: true}},
		{"basic", map[string]string{"Authorization": "Basic " + b64(id+":"+secret)}, httpapi.Credential{Secret: secret, AccessKeyID: id, Present: true}},
		{"basic, empty ID", map[string]string{"Authorization": "Basic " + b64(":"+secret)}, httpapi.Credential{Secret: secret, Present: true}},
		{"basic, no colon", map[string]string{"Authorization": "Basic " + b64(secret)}, httpapi.Credential{Present: true}},
		{"basic, not base64", map[string]string{"Authorization": "Basic %%%"}, httpapi.Credential{Present: true}},
		{"basic, secret holds a colon", map[string]string{"Authorization": "Basic " + b64(id+":a:b")}, httpapi.Credential{Secret: "a:b", AccessKeyID: id, Present: true}},
		{"other scheme", map[string]string{"Authorization": "Digest " + secret}, httpapi.Credential{Present: true}},
		{"X-Api-Key", map[string]string{"X-Api-Key": " " + secret + " "}, httpapi.Credential{Secret: secret, Present: true}},
		{"underscore twin alone", map[string]string{"X_Api_Key": secret}, httpapi.Credential{Present: true, Extra: []string{secret}}},
		{"only commas", map[string]string{"X-Api-Key": " , ,"}, httpapi.Credential{Present: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := httpapi.CredentialFromRequest(request(t, "/", "", tc.hdr))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("credential (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCredentialFromRequestMoreThanOne: every credential a request
// carries is read, however it comes (repeated lines, both headers, a
// comma-joined list, an underscore twin), so that none is silently
// ignored: the surfaces refuse the call and a canary among them alerts.
func TestCredentialFromRequestMoreThanOne(t *testing.T) {
	s1, s2 := newSecret(t), newSecret(t)
	id := newID(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+s2))
	tests := []struct {
		name string
		hdr  http.Header
		want []string // every secret
	}{
		{"two Authorization lines", http.Header{"Authorization": {"Bearer " + s1, "Bearer " + s2}}, []string{s1, s2}},
		{"Authorization and X-Api-Key", http.Header{"Authorization": {"Bearer " + s1}, "X-Api-Key": {s2}}, []string{s1, s2}},
		{"Basic and X-Api-Key", http.Header{"Authorization": {basic}, "X-Api-Key": {s1}}, []string{s1, s2}},
		{"two X-Api-Key lines", http.Header{"X-Api-Key": {s1, s2}}, []string{s1, s2}},
		{"comma-joined X-Api-Key", http.Header{"X-Api-Key": {s1 + ", " + s2}}, []string{s1, s2}},
		{"comma-joined Authorization", http.Header{"Authorization": {"Bearer " + s1 + ",Bearer " + s2}}, []string{s1, s2}},
		{"underscore twin beside the real name", http.Header{"X-Api-Key": {s1}, "X_api_key": {s2}}, []string{s1, s2}},
		{"not a twin", http.Header{"Authorization": {"Bearer " + s1}, "Authori_ation": {"x"}, "X-Api-Key": {s2}}, []string{s1, s2}},
		{"an unreadable second one", http.Header{"X-Api-Key": {s1}, "Authorization": {"Digest x"}}, []string{"", s1}},
	}
	// Every spelling of a twin, as a server files it (canonical form).
	for _, name := range []string{"x_api_key", "X-API_KEY", "x_api-KEY"} {
		h := http.Header{}
		h.Add(name, s1)
		h.Add("Authorization", "Bearer "+s2)
		tests = append(tests, struct {
			name string
			hdr  http.Header
			want []string
		}{"twin " + name, h, []string{s1, s2}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := httpapi.CredentialFromRequest(&http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Header: tc.hdr})
			if !c.Present || len(c.Extra) == 0 {
				t.Fatalf("credential %+v: not seen as more than one", c)
			}
			all := append([]string{c.Secret}, c.Extra...)
			slices.Sort(all)
			slices.Sort(tc.want)
			if !slices.Equal(all, tc.want) {
				t.Errorf("read %d credentials, not the %d sent (or not as sent)", len(all), len(tc.want))
			}
		})
	}
}

func TestSecretInURL(t *testing.T) {
	s1, s2 := newSecret(t), newSecret(t)
	p1, err := keyformat.NewSecretWithPrefix("acme_live_")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      string
		query     string
		wantFound bool
		want      []string
	}{
		{"clean", "/v1/accounts", "limit=5", false, nil},
		{"credential parameter", "/v1/accounts", "api_key=abc", true, nil},
		{"credential parameter, upper case", "/", "ACCESS_TOKEN=abc", true, nil},
		{"credential parameter, empty", "/", "token=", false, nil},
		{"secret in a parameter", "/", "q=" + s1, true, []string{s1}},
		{"secret percent-encoded", "/", "q=%6C" + s1[1:], true, []string{s1}},
		{"secret in a parameter name", "/", s1 + "=1", true, []string{s1}},
		{"secret in the path", "/v1/access-keys/" + s1, "", true, []string{s1}},
		{"secret inside a longer value", "/", "q=xx" + s1 + "yy", true, []string{s1}},
		{"two secrets", "/" + s1, "q=" + s2, true, []string{s1, s2}},
		{"one secret, three times", "/" + s1, "a=" + s1 + "&b=" + s1, true, []string{s1}},
		{"a look-alike", "/", "q=" + flipLast(s1), false, nil},
		{"truncated secret", "/", "q=" + s1[:20], false, nil},
		{"malformed query", "/", "%zz&q=" + s1, true, []string{s1}},
		{"malformed query around the secret", "/", "%zz" + s1 + "%", true, []string{s1}},
		{"prefixed secret in a parameter", "/", "q=" + p1, true, []string{p1}},
		{"prefixed secret in the path", "/x/" + p1 + "/y", "", true, []string{p1}},
		{"prefixed secret percent-encoded", "/", "q=%61" + p1[1:], true, []string{p1}},
		{"prefixed and lksk_", "/" + s1, "q=" + p1, true, []string{s1, p1}},
		{"prefixed look-alike", "/", "q=" + flipLast(p1), false, nil},
		{"prefix changed", "/", "q=acme_test_" + p1[len("acme_live_"):], false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			found, secrets := httpapi.SecretInURL(request(t, tc.path, tc.query, nil))
			slices.Sort(secrets)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if found != tc.wantFound || !slices.Equal(secrets, want) {
				t.Errorf("SecretInURL = %v, %d secrets; want %v, %d", found, len(secrets), tc.wantFound, len(want))
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"untrusted peer's header is ignored", "192.0.2.1:1234", []string{"203.0.113.9"}, "192.0.2.1"},
		{"trusted proxy", "10.0.0.5:1234", []string{"203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", "10.0.0.5:1234", []string{"203.0.113.9, 10.0.0.7"}, "203.0.113.9"},
		{"spoofed first hop is not believed", "10.0.0.5:1234", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"garbled chain", "10.0.0.5:1234", []string{"nonsense"}, "10.0.0.5"},
		{"IPv4-mapped IPv6", "[::ffff:192.0.2.1]:1", nil, "192.0.2.1"},
		{"two headers, the last read first", "10.0.0.5:1234", []string{"203.0.113.1", "10.0.0.8, 10.0.0.9"}, "203.0.113.1"},
		{"untrusted hop in the last header", "10.0.0.5:1234", []string{"203.0.113.1", "203.0.113.2,10.0.0.9"}, "203.0.113.2"},
		{"empty element", "10.0.0.5:1234", []string{"203.0.113.1,,10.0.0.9"}, "10.0.0.9"},
		{"trailing comma", "10.0.0.5:1234", []string{"203.0.113.1,"}, "10.0.0.5"},
		{"empty header", "10.0.0.5:1234", []string{""}, "10.0.0.5"},
		{"garbled behind an untrusted hop is not read", "10.0.0.5:1234", []string{"nonsense, 203.0.113.3"}, "203.0.113.3"},
		{"all trusted", "10.0.0.5:1234", []string{" 10.0.0.1 , 10.0.0.2"}, "10.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, "/", "", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := httpapi.ClientIP(r, trusted).String(); got != tc.want {
				t.Errorf("ClientIP = %s, want %s", got, tc.want)
			}
			// A chain that parses is read without allocating (an
			// address that does not parse makes an error).
			clean := true
			for _, v := range tc.xff {
				for p := range strings.SplitSeq(v, ",") {
					if _, err := netip.ParseAddr(strings.TrimSpace(p)); err != nil {
						clean = false
					}
				}
			}
			if n := testing.AllocsPerRun(10, func() { httpapi.ClientIP(r, trusted) }); clean && n != 0 {
				t.Errorf("ClientIP allocates %v times, want 0", n)
			}
		})
	}
}

// FuzzCredentials feeds arbitrary headers and URLs to the two functions that
// read credentials from outside input. They must not panic; a secret that
// SecretInURL reports must be checksum-valid, found in the URL, and
// reported once.
func FuzzCredentials(f *testing.F) {
	secret, err := keyformat.NewSecret()
	if err != nil {
		f.Fatal(err)
	}
	id, err := keyformat.NewID()
	if err != nil {
		f.Fatal(err)
	}
	basicVal := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	f.Add("Bearer "+secret, "", "/v1/accounts", "")
	f.Add(basicVal, "", "/", "")
	f.Add("", secret, "/v1/access-keys/"+secret, "q="+secret+"&q="+secret)
	f.Add("Basic", "", "/", "%zz"+secret)
	f.Add("Basic Og==", " ", "/lksk_", "api_key=1&lksk_=2")
	if p, err := keyformat.NewSecretWithPrefix("acme_live_"); err == nil {
		f.Add("", "", "/"+p, "a_b_c_="+p)
	}
	f.Add("bearer\t", "lksk_", "/"+strings.Repeat("lksk_", 20), "token&x=%6Cksk_")
	f.Fuzz(func(t *testing.T, authz, apiKeyHdr, path, rawQuery string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: path, RawQuery: rawQuery}, Header: http.Header{}}
		if authz != "" {
			r.Header["Authorization"] = []string{authz}
		}
		if apiKeyHdr != "" {
			r.Header["X-Api-Key"] = []string{apiKeyHdr}
		}
		c := httpapi.CredentialFromRequest(r)
		if authz == "" && apiKeyHdr == "" && !cmp.Equal(c, httpapi.Credential{}) {
			t.Errorf("no header, credential %+v", c)
		}
		if (authz != "" || apiKeyHdr != "") && !c.Present {
			t.Error("a header was sent, Present is false")
		}

		found, secrets := httpapi.SecretInURL(r)
		if len(secrets) > 0 && !found {
			t.Error("secrets returned but found is false")
		}
		unescaped, _ := url.QueryUnescape(rawQuery)
		for i, s := range secrets {
			if !keyformat.ValidSecret(s) {
				t.Errorf("reported secret %q fails its checksum", s)
			}
			if !strings.Contains(path, s) && !strings.Contains(rawQuery, s) && !strings.Contains(unescaped, s) && !inQuery(rawQuery, s) {
				t.Errorf("reported secret %q is not in the URL", s)
			}
			if slices.Contains(secrets[:i], s) {
				t.Errorf("secret reported twice")
			}
		}
		// Any secret written plainly into the path is found.
		for i := strings.Index(path, keyformat.SecretPrefix); i >= 0 && i+keyformat.SecretLen <= len(path); {
			if cand := path[i : i+keyformat.SecretLen]; keyformat.ValidSecret(cand) && !slices.Contains(secrets, cand) {
				t.Errorf("secret in the path not reported")
			}
			j := strings.Index(path[i+1:], keyformat.SecretPrefix)
			if j < 0 {
				break
			}
			i += 1 + j
		}

		// Basic auth round-trips an ID without a colon.
		if !strings.Contains(authz, ":") && authz != "" {
			r2 := &http.Request{Header: http.Header{}}
			r2.SetBasicAuth(authz, apiKeyHdr)
			c2 := httpapi.CredentialFromRequest(r2)
			if c2.AccessKeyID != authz || c2.Secret != apiKeyHdr || !c2.Present {
				t.Errorf("basic round trip: got id %q", c2.AccessKeyID)
			}
		}
	})
}

// inQuery reports whether s is in a decoded key or value of rawQuery.
func inQuery(rawQuery, s string) bool {
	q, _ := url.ParseQuery(rawQuery)
	for k, vs := range q {
		if strings.Contains(k, s) {
			return true
		}
		for _, v := range vs {
			if strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}
