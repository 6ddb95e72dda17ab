package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wabot/session/fakewa"
	"wabot/tenant"
)

var (
	apiSizes    = flag.String("api-tenants", "1,50", `tenant counts of the API send benchmark ("" skips it)`)
	apiSends    = flag.Int("api-sends", 1000, "API sends per run")
	apiClients  = flag.Int("api-clients", 32, "concurrent API clients per run (at least one per tenant)")
	apiReps     = flag.Int("api-reps", 3, "runs at each size; the report gives medians")
	apiContacts = flag.Int("api-contacts", 10, "contacts per tenant the API sends to (they never wrote first)")
)

// apiTenant is one workspace as an API client sees it: its key, its
// WhatsApp number and the contacts it sends to.
type apiTenant struct {
	key      string
	number   string
	contacts []string
}

// apiBench measures POST /api/v1/messages: accepted sends per second and
// the time from send to WhatsApp's delivery receipt, with pacing off. One
// wabot serves every size; a run at size n uses its first n tenants.
func apiBench(root string, fi fakewa.Info, fakePid int, rep *report) error {
	var ns []int
	for _, s := range strings.Split(*apiSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-api-tenants: %q is not a tenant count", s)
		}
		ns = append(ns, n)
	}
	most := slices.Max(ns)
	// Owners sign in with one-time links, as `wabot login-link` makes them.
	links := map[string]string{}
	prep := func(st *tenant.Store) error {
		for i := range most {
			email := fmt.Sprintf("owner%04d@example.com", i)
			token, err := st.CreateLoginLink(context.Background(), email, false)
			if err != nil {
				return err
			}
			links[email] = token
		}
		return nil
	}
	w, err := startLinked(root, "api", most, fi, []string{
		"WABOT_SEND_PACING=false",
		"WABOT_API_RATE_PER_MINUTE=100000", // the per-key limit would cap the closed loop, not wabot
		"WABOT_SEND_MAX_QUEUED=1000000",
	}, prep)
	if err != nil {
		return err
	}
	defer w.stop()
	base := "http://" + envValue(w.env, "WABOT_ADDR")
	all, err := w.st.Overviews(context.Background(), "")
	if err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Owner < all[j].Owner })
	tenants := make([]*apiTenant, len(all))
	errs := make(chan error, len(all))
	for i, o := range all {
		go func() {
			t := &apiTenant{number: tenant.PhoneOf(o.Link.JID)}
			var err error
			if t.key, err = createKey(base, links[o.Owner], i); err == nil {
				t.contacts, err = newContacts(fi.Control, t.number, *apiContacts)
			}
			tenants[i] = t
			errs <- err
		}()
	}
	for range all {
		if err := <-errs; err != nil {
			return err
		}
	}

	rep.line("## API sends")
	rep.line("")
	rep.line("POST /api/v1/messages in a closed loop: %d concurrent clients (at least one per tenant), %d sends per run, each with its own Idempotency-Key, "+
		"to %d contacts per tenant that never wrote first; WABOT_SEND_PACING=false, per-key rate limit and queue bound raised out of the way. "+
		"Medians of %d runs. *accepted/s*: 202 answers per second of the sending phase; *delivered/s*: sends per second until the last delivery receipt. "+
		"Latency in wabot's queue from the message's own created_at → sent_at (server clock, milliseconds; delivered_at is WhatsApp's receipt time, whole seconds), and end to end as the client saw it (POST → the message is no longer in GET /api/v1/messages?status=queued or sent, polled every 50 ms; the message then says delivered). "+
		"CPU: user+system seconds from /proc/<pid>/stat per 1,000 delivered sends.",
		*apiClients, *apiSends, *apiContacts, *apiReps)
	rep.line("")
	coarse := false
	rep.line("| tenants | accepted/s | delivered/s | p50 (queued→sent) | p99 (queued→sent) | p50 (client) | p99 (client) | refused | failed | undelivered | wabot CPU s/1k | fake CPU s/1k |")
	rep.line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range ns {
		var runs []apiRun
		for r := range *apiReps {
			run, err := sendRun(base, tenants[:n], fmt.Sprintf("n%d-r%d", n, r), w.cmd.Process.Pid, fakePid)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "api n=%d run %d: %+v\n", n, r, run)
			runs = append(runs, run)
			coarse = coarse || run.server50 < 0
		}
		med := func(f func(apiRun) float64) float64 {
			v := make([]float64, len(runs))
			for i, r := range runs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		sum := func(f func(apiRun) int) (s int) {
			for _, r := range runs {
				s += f(r)
			}
			return s
		}
		rep.line("| %d | %.0f | %.0f | %s | %s | %s | %s | %d | %d | %d | %.2f | %.2f |", n,
			med(func(r apiRun) float64 { return r.acceptedPerS }), med(func(r apiRun) float64 { return r.deliveredPerS }),
			msOrDash(med(func(r apiRun) float64 { return r.server50 })), msOrDash(med(func(r apiRun) float64 { return r.server99 })),
			msOrDash(med(func(r apiRun) float64 { return r.client50 })), msOrDash(med(func(r apiRun) float64 { return r.client99 })),
			sum(func(r apiRun) int { return r.refused }), sum(func(r apiRun) int { return r.failed }), sum(func(r apiRun) int { return r.undelivered }),
			med(func(r apiRun) float64 { return r.wabotCPU }), med(func(r apiRun) float64 { return r.fakeCPU }))
	}
	rep.line("")
	if coarse {
		rep.line("The API's timestamps have whole seconds only, so the server-clock latency is not given (–): the client's figures include its polling.")
		rep.line("")
	}
	return nil
}

func msOrDash(ms float64) string {
	if ms < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// signInFrom gives owner i a loopback address of its own: the sign-in
// limit counts per address, as it would for owners on their own machines.
func signInFrom(i int) *net.Dialer {
	ip := net.IPv4(127, 0, byte(1+i/250), byte(1+i%250))
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
}

// createKey signs the owner in through the link (a POST to the link's own
// address, as scripts do) and fills in Settings → API keys.
func createKey(base, token string, i int) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: signInFrom(i).DialContext}}
	resp, err := c.Post(base+"/auth/link?token="+url.QueryEscape(token), "application/x-www-form-urlencoded", nil)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/app") {
		return "", fmt.Errorf("signing in owner %d: %s at %s", i, resp.Status, resp.Request.URL.Path)
	}
	form := url.Values{"name": {"bench"}, "scopes": {string(tenant.ScopeMessagesSend), string(tenant.ScopeMessagesRead)}}
	resp, err = c.PostForm(base+"/app/settings/keys", form)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("creating owner %d's key: %s", i, resp.Status)
	}
	// The secret is the value of the read-only field the page shows once.
	tag := regexp.MustCompile(`<input[^>]*data-testid="new-secret"[^>]*>`).Find(body)
	m := regexp.MustCompile(`value="([^"]+)"`).FindSubmatch(tag)
	if m == nil || !strings.HasPrefix(html.UnescapeString(string(m[1])), tenant.APIKeyPrefix) {
		return "", fmt.Errorf("owner %d's keys page shows no secret", i)
	}
	return html.UnescapeString(string(m[1])), nil
}

// newContacts asks the fake for count contacts of the tenant's phone.
func newContacts(control, number string, count int) ([]string, error) {
	body, _ := json.Marshal(map[string]any{"phone": strings.TrimPrefix(number, "+"), "count": count, "name": "Bench"})
	resp, err := http.Post("http://"+control+"/contacts", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ Numbers []string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Numbers) != count {
		return nil, fmt.Errorf("creating contacts of %s: %s", number, resp.Status)
	}
	return out.Numbers, nil
}

type apiRun struct {
	accepted, refused, failed, undelivered int
	acceptedPerS, deliveredPerS            float64
	server50, server99, client50, client99 float64 // ms; -1 when unknown
	wabotCPU, fakeCPU                      float64 // seconds per 1,000 delivered
}

// listIDs is the set of the tenant's outgoing messages in the statuses,
// read in that order, every page.
func listIDs(base, key string, statuses ...string) (map[string]bool, error) {
	ids := map[string]bool{}
	for _, st := range statuses {
		cursor := ""
		for {
			q := url.Values{"direction": {"out"}, "status": {st}, "limit": {"200"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/messages?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := apiHTTP.Do(req)
			if err != nil {
				return nil, err
			}
			var page struct {
				Messages []struct {
					ID json.Number `json:"id"`
				} `json:"messages"`
				Next *string `json:"next"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET /api/v1/messages?status=%s: %s", st, resp.Status)
			}
			for _, m := range page.Messages {
				ids[m.ID.String()] = true
			}
			if page.Next == nil || *page.Next == "" {
				break
			}
			cursor = *page.Next
		}
	}
	return ids, nil
}

// pending is an accepted send not yet seen delivered.
type pending struct {
	id     string
	tenant int
	at     time.Time // the POST began
}

var apiHTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}}

// sendRun is one closed-loop run: the clients send until the run's count
// is reached, one poller per tenant watches its accepted messages until
// each is delivered (or failed, or a minute passed after the last send).
func sendRun(base string, ts []*apiTenant, name string, wabotPid, fakePid int) (apiRun, error) {
	var run apiRun
	// A run starts with every queue empty: what an earlier run left
	// would otherwise be counted against this one.
	for _, t := range ts {
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			ids, err := listIDs(base, t.key, "queued", "sent")
			if err != nil {
				return run, err
			}
			if len(ids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return run, fmt.Errorf("run %s: %d messages of an earlier run still queued or sent after 3 minutes", name, len(ids))
			}
		}
	}
	cpu0w, cpu0f := cpuOf(wabotPid), cpuOf(fakePid)
	var mu sync.Mutex
	waiting := make([][]pending, len(ts))
	var serverLat, clientLat []time.Duration
	var next, refused atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var sends sync.WaitGroup
	for j := range max(*apiClients, len(ts)) {
		sends.Add(1)
		go func() {
			defer sends.Done()
			ti := j % len(ts)
			t := ts[ti]
			for {
				i := int(next.Add(1)) - 1
				if i >= *apiSends {
					return
				}
				body, _ := json.Marshal(map[string]string{"to": "+" + t.contacts[i%len(t.contacts)], "text": fmt.Sprintf("bench %s %d", name, i)})
				req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/messages", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+t.key)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%s-%d", name, i))
				at := time.Now()
				m, status, err := apiCall(req)
				if err != nil || status != http.StatusAccepted {
					refused.Add(1)
					if err == nil {
						err = fmt.Errorf("POST /api/v1/messages: %d %v", status, m)
					}
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				mu.Lock()
				waiting[ti] = append(waiting[ti], pending{id: m.id, tenant: ti, at: at})
				mu.Unlock()
			}
		}()
	}
	var sendEnd time.Time
	sendsDone := make(chan struct{})
	go func() { sends.Wait(); sendEnd = time.Now(); close(sendsDone) }()

	// One watcher per tenant lists the tenant's messages still queued or
	// sent, a page of 200 at a time: an accepted message missing from both
	// lists has left them. Asking for each message instead would load wabot
	// more than the sends do.
	type seen struct {
		p  pending
		at time.Time
	}
	var left []seen
	var watch sync.WaitGroup
	for ti, t := range ts {
		watch.Add(1)
		go func() {
			defer watch.Done()
			var mine []pending
			var giveUp <-chan time.Time
			for {
				mu.Lock()
				mine = append(mine, waiting[ti]...)
				waiting[ti] = nil
				mu.Unlock()
				if len(mine) > 0 {
					// queued first, then sent: a message moving on between
					// the two lists is still found in the second.
					inFlight, err := listIDs(base, t.key, "queued", "sent")
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
					} else {
						now := time.Now()
						still := mine[:0]
						for _, p := range mine {
							if inFlight[p.id] {
								still = append(still, p)
								continue
							}
							mu.Lock()
							left = append(left, seen{p, now})
							mu.Unlock()
						}
						mine = still
					}
				}
				select {
				case <-sendsDone:
					mu.Lock()
					more := len(waiting[ti]) > 0
					mu.Unlock()
					if len(mine) == 0 && !more {
						return
					}
					if giveUp == nil {
						giveUp = time.After(time.Minute)
					}
				default:
				}
				select {
				case <-giveUp:
					mu.Lock()
					run.undelivered += len(mine)
					mu.Unlock()
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}
	watch.Wait()
	if err, _ := firstErr.Load().(error); err != nil && refused.Load() == int64(*apiSends) {
		return run, err // nothing got through: say why instead of a row of zeros
	}
	if err, _ := firstErr.Load().(error); err != nil {
		fmt.Fprintln(os.Stderr, "api run", name+":", err)
	}
	cpuW, cpuF := cpuOf(wabotPid)-cpu0w, cpuOf(fakePid)-cpu0f

	// After the run, each message that left the lists once, for its
	// final status and its own timestamps.
	var lastDelivered time.Time
	var fine bool
	for _, s := range left {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/messages/"+url.PathEscape(s.p.id), nil)
		req.Header.Set("Authorization", "Bearer "+ts[s.p.tenant].key)
		m, _, err := apiCall(req)
		switch {
		case err != nil:
			return run, err
		case m.status == "delivered" || m.status == "read":
			clientLat = append(clientLat, s.at.Sub(s.p.at))
			fine = fine || m.fine
			if !m.created.IsZero() && !m.sent.IsZero() {
				serverLat = append(serverLat, m.sent.Sub(m.created))
			}
			if s.at.After(lastDelivered) {
				lastDelivered = s.at
			}
		case m.status == "failed":
			run.failed++
		default:
			run.undelivered++
		}
	}
	run.refused = int(refused.Load())
	run.accepted = *apiSends - run.refused
	run.acceptedPerS = float64(run.accepted) / sendEnd.Sub(start).Seconds()
	if delivered := len(clientLat); delivered > 0 {
		run.deliveredPerS = float64(delivered) / lastDelivered.Sub(start).Seconds()
		run.wabotCPU = cpuW * 1000 / float64(delivered)
		run.fakeCPU = cpuF * 1000 / float64(delivered)
	}
	run.client50, run.client99 = pctMS(clientLat, 0.50), pctMS(clientLat, 0.99)
	run.server50, run.server99 = pctMS(serverLat, 0.50), pctMS(serverLat, 0.99)
	if !fine { // whole seconds: a latency of 0 or 1 s says nothing
		run.server50, run.server99 = -1, -1
	}
	return run, nil
}

func pctMS(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return -1
	}
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
}

// apiMessage is what the benchmark reads of a message.
type apiMessage struct {
	id, status    string
	created, sent time.Time
	fine          bool // a timestamp with fractions of a second
}

// apiCall does req and reads the message in its answer (bare, or under
// "message").
func apiCall(req *http.Request) (apiMessage, int, error) {
	resp, err := apiHTTP.Do(req)
	if err != nil {
		return apiMessage{}, 0, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return apiMessage{}, resp.StatusCode, fmt.Errorf("%s %s: %d, not JSON", req.Method, req.URL.Path, resp.StatusCode)
	}
	if resp.StatusCode >= 300 {
		return apiMessage{}, resp.StatusCode, fmt.Errorf("%s %s: %d %v", req.Method, req.URL.Path, resp.StatusCode, raw["error"])
	}
	if inner, ok := raw["message"].(map[string]any); ok {
		raw = inner
	}
	m := apiMessage{id: fmt.Sprint(raw["id"]), status: fmt.Sprint(raw["status"])}
	stamp := func(k string) time.Time {
		s, _ := raw[k].(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		// RFC3339Nano drops trailing zeros: one stamp without a fraction
		// may still be exact to the millisecond; all of them cannot.
		m.fine = m.fine || (err == nil && strings.Contains(s, "."))
		return t
	}
	m.created, m.sent = stamp("created_at"), stamp("sent_at")
	if m.id == "" || m.id == "<nil>" {
		return m, resp.StatusCode, fmt.Errorf("%s %s: no message id in the answer", req.Method, req.URL.Path)
	}
	return m, resp.StatusCode, nil
}

// cpuOf is the process's user+system CPU seconds so far.
func cpuOf(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces), from field 3.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
