package tenant_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// A notification from one instance wakes a listener on another at once:
// the poll is an hour here, so only PostgreSQL's NOTIFY can wake it.
func TestPostgresWakerWakesAnotherInstance(t *testing.T) {
	st := tenanttest.OpenPostgres(t)
	other := tenanttest.Reopen(t, st)
	url := tenanttest.URL(t, st)
	a := tenant.NewPostgresWaker(st, url, time.Hour, slog.New(slog.DiscardHandler))
	defer a.Close()
	b := tenant.NewPostgresWaker(other, url, time.Hour, slog.New(slog.DiscardHandler))
	defer b.Close()

	wake, stop := b.Listen("instance:b")
	defer stop()
	unrelated, stopUnrelated := b.Listen("instance:c")
	defer stopUnrelated()
	// Until b's connection listens, notifications go nowhere: knock
	// until one arrives, then drain what the start may have signalled.
	deadline := time.Now().Add(30 * time.Second)
	for heard := false; !heard; {
		if time.Now().After(deadline) {
			t.Fatal("the listener never heard a notification")
		}
		a.Notify(context.Background(), "instance:b")
		select {
		case <-wake:
			heard = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, ch := range []<-chan struct{}{wake, unrelated} {
		select {
		case <-ch:
		default:
		}
	}

	for i := range 3 {
		if err := a.Notify(context.Background(), "instance:b"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wake:
		case <-time.After(30 * time.Second):
			t.Fatalf("notification %d did not reach the other instance", i)
		}
	}
	select {
	case <-unrelated:
		t.Fatal("a notification for instance:b woke instance:c's listener")
	default:
	}
}
