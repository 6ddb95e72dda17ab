package portal_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeGoogle serves Google's OAuth endpoints on loopback: the consent page
// (which approves at once), the token endpoint and both userinfo versions.
// Clients reach it through transport(), which sends accounts.google.com,
// oauth2.googleapis.com, www.googleapis.com and openidconnect.googleapis.com
// to it.
type fakeGoogle struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	next googleUser
	// codes issued and not yet exchanged
	codes map[string]googleUser
	// routes sends other test hosts (wabot.test) to their listeners.
	routes sync.Map
	// tamper, when set, may change any response wabot or a browser gets
	// through transport(): a man in the middle for tests.
	tamper atomic.Pointer[func(*http.Response)]
}

func (g *fakeGoogle) route(host, addr string) { g.routes.Store(host, addr) }

type googleUser struct {
	Sub           string
	Email         string
	EmailVerified bool
	HD            string
	Name          string
}

func newFakeGoogle(t *testing.T) *fakeGoogle {
	g := &fakeGoogle{t: t, codes: map[string]googleUser{},
		next: googleUser{Sub: "g-1001", Email: "ann@example.com", EmailVerified: true, Name: "Ann"}}
	mux := http.NewServeMux()
	mux.HandleFunc("/o/oauth2/auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "google-client" || q.Get("response_type") != "code" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		code := "code-" + q.Get("state")[:8] + "-" + g.next.Sub
		g.codes[code] = g.next
		g.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		bq := back.Query()
		bq.Set("code", code)
		bq.Set("state", q.Get("state"))
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		code := r.PostForm.Get("code")
		g.mu.Lock()
		u, found := g.codes[code]
		delete(g.codes, code) // single use
		g.mu.Unlock()
		if id != "google-client" || secret != "google-secret" || !found {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + u.Sub, "token_type": "Bearer", "expires_in": 3600})
	})
	userinfo := func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("access_token")
		if tok == "" {
			tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		g.mu.Lock()
		u := g.next
		g.mu.Unlock()
		if tok != "at-"+u.Sub {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body := map[string]any{"id": u.Sub, "sub": u.Sub, "email": u.Email, "verified_email": u.EmailVerified,
			"email_verified": u.EmailVerified, "name": u.Name}
		if u.HD != "" {
			body["hd"] = u.HD
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("/oauth2/v2/userinfo", userinfo)
	mux.HandleFunc("/v1/userinfo", userinfo)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// signInAs sets who the next consent signs in.
func (g *fakeGoogle) signInAs(u googleUser) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next = u
}

var googleHosts = map[string]bool{
	"accounts.google.com": true, "oauth2.googleapis.com": true, "www.googleapis.com": true, "openidconnect.googleapis.com": true,
}

// transport routes Google's hosts to the fake and everything else (the
// wabot under test, on loopback) as is.
func (g *fakeGoogle) transport() http.RoundTripper {
	fake := g.srv.Listener.Addr().String()
	var d net.Dialer
	tr := &http.Transport{DialContext: d.DialContext}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		orig := r
		if googleHosts[r.URL.Hostname()] {
			r = r.Clone(r.Context())
			r.URL.Scheme, r.URL.Host = "http", fake
		} else if addr, ok := g.routes.Load(r.URL.Host); ok {
			host := r.URL.Host
			r = r.Clone(r.Context())
			r.URL.Host = addr.(string)
			r.Host = host
		}
		resp, err := tr.RoundTrip(r)
		if resp != nil {
			resp.Request = orig // redirects and cookies follow the names the browser used
			if f := g.tamper.Load(); f != nil {
				(*f)(resp)
			}
		}
		return resp, err
	})
}

func (g *fakeGoogle) client() *http.Client { return &http.Client{Transport: g.transport()} }

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
