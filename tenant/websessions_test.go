package tenant_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"wabot/tenant/tenanttest"
)

func TestWebSessionsCommitFindDelete(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	ws := st.WebSessions()
	find := func(token string) ([]byte, bool) {
		t.Helper()
		data, found, err := ws.Find(token)
		if err != nil {
			t.Fatal(err)
		}
		ctxData, ctxFound, err := ws.FindCtx(ctx, token)
		if err != nil || ctxFound != found || !bytes.Equal(ctxData, data) {
			t.Fatalf("FindCtx(%q) = %q, %v, %v; Find gave %q, %v", token, ctxData, ctxFound, err, data, found)
		}
		return data, found
	}
	steps := []struct {
		name      string
		do        func() error
		token     string
		wantData  string
		wantFound bool
	}{
		{"unknown", func() error { return nil }, "h1", "", false},
		{"committed", func() error { return ws.Commit("h1", []byte("one"), t0.Add(time.Hour)) }, "h1", "one", true},
		{"replaced", func() error { return ws.CommitCtx(ctx, "h1", []byte("two"), t0.Add(2*time.Hour)) }, "h1", "two", true},
		{"another token is apart", func() error { return ws.Commit("h2", []byte("other"), t0.Add(time.Hour)) }, "h1", "two", true},
		{"deleted", func() error { return ws.Delete("h1") }, "h1", "", false},
		{"deleting again is fine", func() error { return ws.DeleteCtx(ctx, "h1") }, "h1", "", false},
		{"the other is left", func() error { return nil }, "h2", "other", true},
		{"committed already expired", func() error { return ws.Commit("h3", []byte("x"), t0.Add(-time.Second)) }, "h3", "", false},
		{"expiring exactly now", func() error { return ws.Commit("h4", []byte("x"), t0) }, "h4", "", false},
		{"expiring in a millisecond", func() error { return ws.Commit("h5", []byte("x"), t0.Add(time.Millisecond)) }, "h5", "x", true},
		{"binary data", func() error { return ws.Commit("h6", []byte{0, 1, 2, 0xff}, t0.Add(time.Hour)) }, "h6", "\x00\x01\x02\xff", true},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		data, found := find(s.token)
		if found != s.wantFound || string(data) != s.wantData {
			t.Errorf("%s: Find(%q) = %q, %v; want %q, %v", s.name, s.token, data, found, s.wantData, s.wantFound)
		}
	}

	// Time passes: the first hour's sessions lapse, and RemoveExpired
	// deletes them but not the one still valid.
	clk.Advance(90 * time.Minute)
	if _, found := find("h2"); found {
		t.Error("an expired session is found")
	}
	if err := ws.Commit("h7", []byte("fresh"), clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ws.Commit("h8", []byte("lapsing"), clk.Now()); err != nil { // as Find, expired at its expiry
		t.Fatal(err)
	}
	if err := ws.RemoveExpired(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	rows, err := tenanttest.Raw(t, st.Path()).Query(`SELECT token FROM web_sessions ORDER BY token`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var tok string
		if err := rows.Scan(&tok); err != nil {
			t.Fatal(err)
		}
		left = append(left, tok)
	}
	if len(left) != 1 || left[0] != "h7" {
		t.Errorf("after RemoveExpired the table holds %v, want [h7]", left)
	}
	if data, found := find("h7"); !found || string(data) != "fresh" {
		t.Errorf("Find(h7) = %q, %v", data, found)
	}
}
