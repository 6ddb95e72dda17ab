package tenant_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"wabot/tenant"
)

func TestControlRequestsAreCarriedOutOnce(t *testing.T) {
	ctx := context.Background()
	st, clk := openStore(t)
	asked := []tenant.ControlRequest{
		{TenantID: "taaaaaaaaaaaaaaaa", Action: tenant.ActionReset},
		{TenantID: "tbbbbbbbbbbbbbbbb", Action: tenant.ActionRestart},
		{TenantID: "taaaaaaaaaaaaaaaa", Action: tenant.ActionSuspend},
	}
	for i := range asked {
		clk.Advance(time.Second)
		id, err := st.RequestControl(ctx, asked[i].TenantID, asked[i].Action)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && id <= asked[i-1].ID {
			t.Errorf("id %d after %d", id, asked[i-1].ID)
		}
		asked[i].ID = id
	}
	open := func(limit int) []tenant.ControlRequest {
		t.Helper()
		rs, err := st.OpenControlRequests(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	if got := open(10); !reflect.DeepEqual(got, asked) {
		t.Errorf("open requests %+v, want %+v", got, asked)
	}
	if got := open(2); !reflect.DeepEqual(got, asked[:2]) {
		t.Errorf("open requests, limit 2: %+v, want %+v", got, asked[:2])
	}
	for _, r := range asked {
		if result, done, err := st.ControlResult(ctx, r.ID); err != nil || done || result != "" {
			t.Errorf("request %d before it is carried out: %q, done %v, %v", r.ID, result, done, err)
		}
	}

	steps := []struct {
		finish   int
		result   string
		wantOpen []tenant.ControlRequest
	}{
		{1, "restarted", []tenant.ControlRequest{asked[0], asked[2]}},
		{0, "", []tenant.ControlRequest{asked[2]}}, // done with an empty result is still done
		{2, "error: no such tenant", nil},
	}
	for _, s := range steps {
		if err := st.FinishControlRequest(ctx, asked[s.finish].ID, s.result); err != nil {
			t.Fatal(err)
		}
		result, done, err := st.ControlResult(ctx, asked[s.finish].ID)
		if err != nil || !done || result != s.result {
			t.Errorf("request %d: %q, done %v, %v; want %q, done", asked[s.finish].ID, result, done, err, s.result)
		}
		if got := open(10); !reflect.DeepEqual(got, s.wantOpen) {
			t.Errorf("after finishing %d open %+v, want %+v", asked[s.finish].ID, got, s.wantOpen)
		}
	}

	_, done, err := st.ControlResult(ctx, asked[2].ID+100)
	wantCode(t, err, tenant.CodeNotFound)
	if done {
		t.Error("an unknown request is done")
	}
}
