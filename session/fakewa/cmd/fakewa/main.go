// Command fakewa runs the fake WhatsApp server in its own process, so a
// benchmark can measure wabot's memory apart from the fake's. It prints
// its Info as one JSON line and serves a small control API:
//
//	POST /scan {"qr": "..."}          a new phone scans the code; {"jid": ...}
//	POST /load {"numbers": [...], "contacts": 10, "seconds": 10, "rate": 0}
//	    contacts of those numbers send "ping N" (closed loop when rate is
//	    0, else rate messages per second in all) and the replies' latency
//	    is reported; with "hot": "<number>" that number gets half of the
//	    steady rate and the others' latency is reported apart ("others_*")
//	POST /contacts {"phone": "...", "numbers": [...], "count": 0, "name": "..."}
//	    makes numbers (or count new ones) contacts of that phone without
//	    their writing first, so wabot's API can send to them; {"numbers": [...]}
//	POST /media {"phone": "...", "from": "...", "name": "...", "kind": "image",
//	    "mime": "...", "file_name": "...", "caption": "...", "seconds": 0,
//	    "voice_note": false, "data": "<base64>"}
//	    the contact from (made if new) sends the phone an attachment of kind
//	    image, video, audio, document or sticker; {"id": ...}
//	GET  /stats                       phones and online devices
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"wabot/session/fakewa"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "websocket listen address")
	control := flag.String("control", "127.0.0.1:0", "control API listen address")
	infoPath := flag.String("info", "", "also write the info JSON to this file")
	flag.Parse()
	srv, err := fakewa.NewServer(fakewa.Options{Addr: *addr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := &ctl{srv: srv, phones: map[string]*fakewa.Phone{}}
	srv.OnSent(c.sent)
	raw, _ := json.Marshal(srv.Info(ln.Addr().String()))
	fmt.Println(string(raw))
	if *infoPath != "" {
		os.WriteFile(*infoPath, raw, 0o600)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /scan", c.scan)
	mux.HandleFunc("POST /load", c.load)
	mux.HandleFunc("POST /contacts", c.contacts)
	mux.HandleFunc("POST /media", c.media)
	mux.HandleFunc("GET /stats", c.stats)
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	hs.Close()
	srv.Close()
}

type ctl struct {
	srv    *fakewa.Server
	mu     sync.Mutex
	phones map[string]*fakewa.Phone
	// the load run in progress: send times by sequence number
	run *loadRun
}

type loadRun struct {
	mu      sync.Mutex
	sentAt  map[int]time.Time
	lat     []time.Duration
	hot     map[int]bool    // sequence numbers sent to the hot number
	others  []time.Duration // latency of the replies not from the hot number
	replies int
	waiters map[int]chan struct{}
}

func (c *ctl) scan(w http.ResponseWriter, r *http.Request) {
	var in struct{ QR string }
	if json.NewDecoder(r.Body).Decode(&in) != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	p := c.srv.NewPhone("")
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	jid, err := p.Scan(ctx, in.QR)
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	c.mu.Lock()
	c.phones[p.Number()] = p
	c.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]string{"jid": jid.String(), "number": p.Number()})
}

// contacts creates contacts of a linked phone that have never written:
// WhatsApp knows them (IsOnWhatsApp says yes) and their devices decrypt
// and acknowledge what the phone's linked devices send them.
func (c *ctl) contacts(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Phone   string   `json:"phone"`
		Numbers []string `json:"numbers"`
		Count   int      `json:"count"`
		Name    string   `json:"name"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Count < 0 || in.Count > 10000 || len(in.Numbers)+in.Count == 0 {
		http.Error(w, `send {"phone":"15550001111","numbers":["15550002222"]} or {"phone":...,"count":10}`, http.StatusBadRequest)
		return
	}
	for _, n := range in.Numbers {
		if d := strings.TrimPrefix(n, "+"); len(d) < 6 || strings.Trim(d, "0123456789") != "" {
			http.Error(w, "not a phone number: "+n, http.StatusBadRequest)
			return
		}
	}
	c.mu.Lock()
	p := c.phones[strings.TrimPrefix(in.Phone, "+")]
	c.mu.Unlock()
	if p == nil {
		http.Error(w, "unknown phone "+in.Phone, http.StatusNotFound)
		return
	}
	out := []string{}
	for _, n := range in.Numbers {
		out = append(out, p.NewContact(strings.TrimPrefix(n, "+"), in.Name).JID().User)
	}
	for range in.Count {
		out = append(out, p.NewContact("", in.Name).JID().User)
	}
	json.NewEncoder(w).Encode(map[string][]string{"numbers": out})
}

// media makes a contact send an attachment, so the demo build and the
// benchmark exercise wabot's inbound media path against this process.
func (c *ctl) media(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Phone     string `json:"phone"`
		From      string `json:"from"`
		Name      string `json:"name"`
		Kind      string `json:"kind"`
		Mime      string `json:"mime"`
		FileName  string `json:"file_name"`
		Caption   string `json:"caption"`
		Seconds   uint32 `json:"seconds"`
		VoiceNote bool   `json:"voice_note"`
		Data      []byte `json:"data"` // base64 in the JSON
	}
	if json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMediaRequest)).Decode(&in) != nil || len(in.Data) == 0 || in.From == "" {
		http.Error(w, `send {"phone":"15550001111","from":"15550002222","kind":"image","mime":"image/png","data":"<base64>"}`, http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	p := c.phones[strings.TrimPrefix(in.Phone, "+")]
	c.mu.Unlock()
	if p == nil {
		http.Error(w, "unknown phone "+in.Phone, http.StatusNotFound)
		return
	}
	id, err := p.NewContact(strings.TrimPrefix(in.From, "+"), in.Name).SendMedia(fakewa.Media{
		Kind: fakewa.MediaKind(in.Kind), Data: in.Data, Mime: in.Mime, FileName: in.FileName,
		Caption: in.Caption, Seconds: in.Seconds, VoiceNote: in.VoiceNote,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"id": id})
}

// maxMediaRequest bounds a /media request: a 100 MB document in base64.
const maxMediaRequest = 140 << 20

func (c *ctl) stats(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	online := 0
	for _, p := range c.phones {
		for _, d := range p.LinkedDevices() {
			if d.Online {
				online++
			}
		}
	}
	json.NewEncoder(w).Encode(map[string]int{"phones": len(c.phones), "online": online})
}

// sent sees every reply a contact decrypted: "pong ping N" ends message N.
func (c *ctl) sent(s fakewa.Sent) {
	c.mu.Lock()
	run := c.run
	c.mu.Unlock()
	if run == nil {
		return
	}
	i := strings.LastIndex(s.Text, "ping ")
	if i < 0 {
		return
	}
	seq, err := strconv.Atoi(strings.TrimSpace(s.Text[i+5:]))
	if err != nil {
		return
	}
	run.mu.Lock()
	if t, ok := run.sentAt[seq]; ok {
		run.lat = append(run.lat, s.At.Sub(t))
		if !run.hot[seq] {
			run.others = append(run.others, s.At.Sub(t))
		}
		run.replies++
		delete(run.sentAt, seq)
	}
	ch := run.waiters[seq]
	delete(run.waiters, seq)
	run.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

func (c *ctl) load(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Numbers  []string `json:"numbers"`
		Contacts int      `json:"contacts"`
		Seconds  float64  `json:"seconds"`
		Rate     float64  `json:"rate"`
		Hot      string   `json:"hot"`
	}
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Contacts <= 0 || in.Seconds <= 0 {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	var contacts, hot []*fakewa.Contact
	c.mu.Lock()
	for _, n := range in.Numbers {
		p := c.phones[n]
		if p == nil {
			c.mu.Unlock()
			http.Error(w, "unknown number "+n, http.StatusNotFound)
			return
		}
		for i := range in.Contacts {
			ct := p.NewContact(fmt.Sprintf("1777%s%02d", n[len(n)-5:], i), "Load")
			if n == in.Hot {
				hot = append(hot, ct)
			} else {
				contacts = append(contacts, ct)
			}
		}
	}
	if len(contacts) == 0 {
		contacts, hot = hot, nil
	}
	run := &loadRun{sentAt: map[int]time.Time{}, waiters: map[int]chan struct{}{}, hot: map[int]bool{}}
	c.run = run
	c.mu.Unlock()

	var seqMu sync.Mutex
	seq := 0
	next := func() int { seqMu.Lock(); defer seqMu.Unlock(); seq++; return seq }
	send := func(ct *fakewa.Contact, wait bool) {
		n := next()
		var ch chan struct{}
		run.mu.Lock()
		run.sentAt[n] = time.Now()
		if slices.Contains(hot, ct) {
			run.hot[n] = true
		}
		if wait {
			ch = make(chan struct{})
			run.waiters[n] = ch
		}
		run.mu.Unlock()
		ct.Send("ping " + strconv.Itoa(n))
		if wait {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
			}
		}
	}
	start := time.Now()
	deadline := start.Add(time.Duration(in.Seconds * float64(time.Second)))
	var wg sync.WaitGroup
	if in.Rate <= 0 {
		for _, ct := range append(contacts, hot...) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					send(ct, true)
				}
			}()
		}
		wg.Wait()
	} else {
		interval := time.Duration(float64(time.Second) / in.Rate)
		tick := time.NewTicker(interval)
		i := 0
		for now := range tick.C {
			if now.After(deadline) {
				break
			}
			ct := contacts[i%len(contacts)]
			if len(hot) > 0 && i%2 == 0 { // every other message to the hot number
				ct = hot[i/2%len(hot)]
			} else if len(hot) > 0 {
				ct = contacts[i/2%len(contacts)]
			}
			i++
			wg.Add(1)
			go func() { defer wg.Done(); send(ct, false) }()
		}
		tick.Stop()
		wg.Wait()
		// let the last replies arrive
		end := time.Now().Add(5 * time.Second)
		for time.Now().Before(end) {
			run.mu.Lock()
			left := len(run.sentAt)
			run.mu.Unlock()
			if left == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	c.mu.Lock()
	c.run = nil
	c.mu.Unlock()
	run.mu.Lock()
	defer run.mu.Unlock()
	lat, others := slices.Clone(run.lat), slices.Clone(run.others)
	slices.Sort(lat)
	slices.Sort(others)
	pct := func(lat []time.Duration, p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	json.NewEncoder(w).Encode(map[string]any{
		"sent": seq, "replies": run.replies, "lost": len(run.sentAt), "elapsed_s": elapsed.Seconds(),
		"replies_per_s": float64(run.replies) / min(elapsed, time.Duration(in.Seconds*float64(time.Second))).Seconds(),
		"p50_ms":        pct(lat, 0.50), "p90_ms": pct(lat, 0.90), "p99_ms": pct(lat, 0.99), "max_ms": pct(lat, 1),
		"others_p50_ms": pct(others, 0.50), "others_p99_ms": pct(others, 0.99), "others_replies": len(others),
	})
}
