package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"wabot/session/fakewa"
)

// TestContacts: POST /contacts makes contacts of a linked phone that never
// wrote (the fake then knows their numbers and whose contacts they are);
// an unknown phone is refused.
func TestContacts(t *testing.T) {
	srv, err := fakewa.NewServer(fakewa.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p := srv.NewPhone("")
	c := &ctl{srv: srv, phones: map[string]*fakewa.Phone{p.Number(): p}}
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		c.contacts(w, httptest.NewRequest(http.MethodPost, "/contacts", strings.NewReader(body)))
		return w
	}

	w := post(`{"phone":"+` + p.Number() + `","numbers":["+15550002222"],"count":2,"name":"Bench"}`)
	var out struct{ Numbers []string }
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil || len(out.Numbers) != 3 || out.Numbers[0] != "15550002222" {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	for _, n := range out.Numbers {
		if ct := srv.Contact(n); ct == nil || ct.Phone() != p || ct.Name() != "Bench" {
			t.Fatalf("contact %s is not the phone's: %v", n, ct)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(out.Numbers)))) != 3 {
		t.Fatalf("numbers not distinct: %v", out.Numbers)
	}

	if w := post(`{"phone":"19990000000","count":1}`); w.Code != http.StatusNotFound || srv.Contact("19990000000") != nil {
		t.Fatalf("unknown phone: %d %s", w.Code, w.Body)
	}
	if w := post(`{"phone":"` + p.Number() + `","numbers":["12ab"]}`); w.Code != http.StatusBadRequest {
		t.Fatalf("bad number: %d %s", w.Code, w.Body)
	}
}

// TestMedia: POST /media reaches the contact's SendMedia with the decoded
// attachment (here the phone has no linked device, so delivery is what
// fails); bad requests and unknown phones are refused.
func TestMedia(t *testing.T) {
	srv, err := fakewa.NewServer(fakewa.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p := srv.NewPhone("")
	c := &ctl{srv: srv, phones: map[string]*fakewa.Phone{p.Number(): p}}
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		c.media(w, httptest.NewRequest(http.MethodPost, "/media", strings.NewReader(body)))
		return w
	}
	data := base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 menu"))

	w := post(`{"phone":"+` + p.Number() + `","from":"+15550002222","name":"Ann","kind":"document","file_name":"menu.pdf","data":"` + data + `"}`)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "no linked device") {
		t.Fatalf("send without a linked device: %d %s", w.Code, w.Body)
	}
	if ct := srv.Contact("15550002222"); ct == nil || ct.Name() != "Ann" {
		t.Fatalf("the sender is not a contact: %v", ct)
	}
	if w := post(`{"phone":"` + p.Number() + `","from":"15550002222","kind":"hologram","data":"` + data + `"}`); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "unknown media kind") {
		t.Fatalf("unknown kind: %d %s", w.Code, w.Body)
	}
	if w := post(`{"phone":"19990000000","from":"15550002222","kind":"image","data":"` + data + `"}`); w.Code != http.StatusNotFound {
		t.Fatalf("unknown phone: %d %s", w.Code, w.Body)
	}
	if w := post(`{"phone":"` + p.Number() + `","from":"15550002222","kind":"image","data":"not base64!"}`); w.Code != http.StatusBadRequest {
		t.Fatalf("bad data: %d %s", w.Code, w.Body)
	}
}
