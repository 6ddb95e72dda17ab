package app

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"wabot/session/fakewa/rigtest"
)

// doMethod sends one request with any method and path and drains it.
func doMethod(t *testing.T, method, url string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Issue 13, finding 2: strangers' methods and paths must not grow the
// metrics or the log.
func TestHugeMethodsAndPathsDoNotGrowMetricsOrLog(t *testing.T) {
	logs := &rigtest.Buffer{}
	a := startApp(t, testConfig(t), logs)
	// Warm up every series the loop below can touch, then measure.
	doMethod(t, "BREW", a.URL()+"/healthz")
	doMethod(t, "BREW", a.URL()+"/no/such/page")
	scrape(t, a.URL()+"/metrics", nil)
	_, before := scrape(t, a.URL()+"/metrics", nil)
	logBefore := len(logs.String())

	const n = 20
	for i := range n {
		method := strings.Repeat("X", 64<<10) + string(rune('A'+i))
		doMethod(t, method, a.URL()+"/healthz")
		doMethod(t, method, a.URL()+"/"+strings.Repeat("p", 32<<10)+string(rune('a'+i)))
	}
	_, after := scrape(t, a.URL()+"/metrics", nil)
	// Counters change digits, and Go's runtime gauges wobble; a new series
	// per request would add 64 KB each.
	if grown := len(after) - len(before); grown > 4<<10 {
		t.Fatalf("/metrics grew by %d bytes after %d requests with new methods:\n%s", grown, 2*n, grepLines(after, "wabot_http"))
	}
	if !strings.Contains(after, `method="OTHER"`) {
		t.Errorf("unknown methods are not counted as OTHER:\n%s", grepLines(after, "wabot_http"))
	}
	logged := logs.String()[logBefore:]
	if grown := len(logged); grown > 2*n*1024 {
		t.Fatalf("the log grew by %d bytes for %d requests", grown, 2*n)
	}
	if strings.Contains(logged, "XXXXXXXX") || strings.Contains(logged, "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp") {
		t.Fatal("a raw method or a whole long path was logged")
	}
	if !strings.Contains(logged, `"method":"OTHER"`) {
		t.Fatalf("requests with unknown methods are not logged as OTHER:\n%.2000s", logged)
	}
}

// A client's X-Request-ID is echoed and logged; a long one is replaced.
func TestLongRequestIDIsReplaced(t *testing.T) {
	logs := &rigtest.Buffer{}
	a := startApp(t, testConfig(t), logs)
	long := strings.Repeat("r", 10<<10)
	_, _, h := request(t, a.URL()+"/healthz", map[string]string{"X-Request-ID": long})
	if got := h.Get("X-Request-ID"); got == long || got == "" {
		t.Fatalf("X-Request-ID %.40q…", got)
	}
	if strings.Contains(logs.String(), long[:1024]) {
		t.Fatal("a long client request id was logged")
	}
	_, _, h = request(t, a.URL()+"/healthz", map[string]string{"X-Request-ID": "trace-42.a"})
	if h.Get("X-Request-ID") != "trace-42.a" {
		t.Fatalf("a proxy's short request id is not kept: %q", h.Get("X-Request-ID"))
	}
}

// Issue 13, finding 9: behind a same-host proxy with WABOT_TRUSTED_PROXIES
// unset every request comes from 127.0.0.1; forwarded requests must not
// get /metrics without a token, and the operator is told once.
func TestMetricsRefusedThroughAnUntrustedProxy(t *testing.T) {
	logs := &rigtest.Buffer{}
	a := startApp(t, testConfig(t), logs)
	if code, body := scrape(t, a.URL()+"/metrics", nil); code != http.StatusOK || !strings.Contains(body, "wabot_tenants") {
		t.Fatalf("direct loopback scrape: %d", code)
	}
	for _, hdr := range []map[string]string{
		{"X-Forwarded-For": "203.0.113.7"},
		{"X-Real-IP": "203.0.113.7"},
		{"Forwarded": "for=203.0.113.7;proto=https"},
	} {
		if code, body := scrape(t, a.URL()+"/metrics", hdr); code != http.StatusForbidden || strings.Contains(body, "wabot_tenants") {
			t.Errorf("forwarded scrape %v: %d", hdr, code)
		}
	}
	get(t, a.URL()+"/healthz")
	if n := strings.Count(logs.String(), "WABOT_TRUSTED_PROXIES does not list"); n != 1 {
		t.Fatalf("the untrusted-proxy warning was logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"proxy":"127.0.0.1"`) {
		t.Fatalf("the warning does not name the proxy:\n%s", logs.String())
	}
}

// With a token, forwarded scrapes work, and a trusted proxy draws no
// warning.
func TestMetricsThroughATrustedProxyWithToken(t *testing.T) {
	logs := &rigtest.Buffer{}
	cfg := testConfigWith(t, map[string]string{"WABOT_TRUSTED_PROXIES": "127.0.0.1/32", "WABOT_METRICS_TOKEN": "tok-123"})
	a := startApp(t, cfg, logs)
	code, body := scrape(t, a.URL()+"/metrics", map[string]string{"X-Forwarded-For": "203.0.113.7", "Authorization": "Bearer tok-123"})
	if code != http.StatusOK || !strings.Contains(body, "wabot_tenants") {
		t.Fatalf("forwarded scrape with the token: %d", code)
	}
	if strings.Contains(logs.String(), "does not list") {
		t.Fatalf("warned about a trusted proxy:\n%s", logs.String())
	}
}
