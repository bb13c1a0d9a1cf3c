package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeCert makes a self-signed certificate for 127.0.0.1 at run time.
func writeCert(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

func TestServeTLSWithHSTS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, pool := writeCert(t, dir)
	srv := startServer(t, t.TempDir(), "--tls-cert", certPath, "--tls-key", keyPath)
	if !strings.HasPrefix(srv.endpoint, "https://") {
		t.Fatalf("endpoint %s is not https", srv.endpoint)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(srv.endpoint + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS state %+v", resp.TLS)
	}
}

func TestServerTLSConfigHasNoCBC(t *testing.T) {
	cfg := serverTLSConfig(tls.Certificate{})
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.CipherSuites) == 0 {
		t.Fatalf("MinVersion %x, %d suites", cfg.MinVersion, len(cfg.CipherSuites))
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || strings.Contains(name, "CBC") || !strings.HasPrefix(name, "TLS_ECDHE_") {
			t.Errorf("suite %s is offered", name)
		}
	}
}

var (
	tlsProxyRE    = regexp.MustCompile(`reverse proxy on https://(\S+) to `)
	tlsExtAuthzRE = regexp.MustCompile(`Envoy ext_authz gRPC service on (\S+)`)
)

// TestServeTLSRefusesCBC: every TLS listener serve opens (the API, the
// reverse proxy, ext_authz) refuses a client that offers only CBC suites,
// and accepts one that offers ECDHE with AES-GCM, or TLS 1.3.
func TestServeTLSRefusesCBC(t *testing.T) {
	certPath, keyPath, pool := writeCert(t, t.TempDir())
	srv := startServer(t, t.TempDir(), "--tls-cert", certPath, "--tls-key", keyPath,
		"--proxy-upstream", "http://127.0.0.1:9", "--proxy-addr", "127.0.0.1:0", "--ext-authz-addr", "127.0.0.1:0")
	listeners := map[string]string{
		"api":       strings.TrimPrefix(srv.endpoint, "https://"),
		"proxy":     srv.waitFor(tlsProxyRE),
		"ext_authz": srv.waitFor(tlsExtAuthzRE),
	}
	tests := []struct {
		name    string
		max     uint16
		suite   uint16
		succeed bool
	}{
		{"CBC-SHA1 (AES-128)", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"CBC-SHA1 (AES-256)", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{"CBC-SHA256", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, false},
		{"ECDHE-ECDSA-AES128-GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"ECDHE-ECDSA-CHACHA20", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{"TLS 1.3", tls.VersionTLS13, 0, true},
	}
	for name, addr := range listeners {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tt.max, NextProtos: []string{"h2", "http/1.1"}}
				if tt.suite != 0 {
					cfg.CipherSuites = []uint16{tt.suite}
				}
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
				if tt.succeed {
					if err != nil {
						t.Fatalf("handshake: %v", err)
					}
					st := c.ConnectionState()
					if tt.suite != 0 && st.CipherSuite != tt.suite {
						t.Errorf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
					}
					c.Close()
					return
				}
				if err == nil {
					c.Close()
					t.Fatalf("handshake with only %s succeeded", tls.CipherSuiteName(tt.suite))
				}
				if !strings.Contains(err.Error(), "handshake failure") {
					t.Errorf("handshake error %v, want a handshake failure alert", err)
				}
			})
		}
	}
	srv.stop()
}
