package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestServeMetrics: /metrics is on the API's listener by default, and only
// on its own listener with --metrics-addr.
func TestServeMetrics(t *testing.T) {
	s := startServer(t, t.TempDir())
	defer s.stop()
	code, body := get(t, s.endpoint+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "latchkey_index_keys 1") || !strings.Contains(body, `latchkey_store_duration_seconds_count{op="update"}`) {
		t.Fatalf("GET /metrics: %d %.300s", code, body)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s2 := startServer(t, t.TempDir(), "--metrics-addr", addr, "--policy-interval", "1s")
	defer s2.stop()
	if code, _ := get(t, s2.endpoint+"/metrics"); code != http.StatusNotFound {
		t.Errorf("main listener /metrics: %d, want 404 with --metrics-addr", code)
	}
	if code, body := get(t, "http://"+addr+"/metrics"); code != http.StatusOK || !strings.Contains(body, "latchkey_verifications_total") {
		t.Errorf("metrics listener: %d %.200s", code, body)
	}
}
