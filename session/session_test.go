package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"wabot/session/fakewa"
	"wabot/session/fakewa/fakewatest"
	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// whatsmeow's keepalive settings stay at their defaults here: with 50
// tenants under the race detector on two cores, second-scale keepalive
// deadlines would force reconnects that no test asked for. The fakewa tests
// cover keepalive timeouts.

// rig is a real app database, a fake WhatsApp server and a Manager.
type rig struct {
	t        testing.TB
	dir      string
	store    *tenant.Store
	srv      *fakewa.Server
	cfg      Config
	pipeline Pipeline
	// connector replaces the plain fake connector when set.
	connector Connector
	m         *Manager
	log       *slog.Logger
}

// newRig's database and device stores are SQLite files, or PostgreSQL
// with WABOT_TEST_BACKEND=postgres.
func newRig(t testing.TB, opts fakewa.Options, tweak func(*Config)) *rig {
	t.Helper()
	return newRigOn(t, tenanttest.Backend(), opts, tweak)
}

func newRigOn(t testing.TB, backend tenant.Dialect, opts fakewa.Options, tweak func(*Config)) *rig {
	t.Helper()
	dir := t.TempDir()
	log := rigtest.Logger("SESSION_LOG")
	var st *tenant.Store
	var devices DeviceStores
	if backend == tenant.Postgres {
		st = tenanttest.OpenPostgres(t)
		pg, err := NewPostgresDevices(context.Background(), tenanttest.URL(t, st), st, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() }) // after the manager's shutdown below
		devices = pg
	} else {
		st = tenanttest.OpenAt(t, filepath.Join(dir, "wabot.db"))
	}
	srv := fakewatest.NewServer(t, opts)
	r := &rig{t: t, dir: dir, store: st, srv: srv, log: log}
	r.cfg = Config{
		Devices:              devices,
		SessionsDir:          filepath.Join(dir, "sessions"),
		ReconnectMaxAttempts: 4,
		HeartbeatInterval:    200 * time.Millisecond,
		QRFirstTimeout:       5 * time.Second,
		QRNextTimeout:        5 * time.Second,
		ReconnectBaseDelay:   20 * time.Millisecond,
		ReconnectMaxDelay:    200 * time.Millisecond,
		RestartBaseDelay:     50 * time.Millisecond,
		RestartMaxDelay:      200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&r.cfg)
	}
	t.Cleanup(func() {
		if r.m != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			r.m.Shutdown(ctx)
			cancel()
		}
	})
	return r
}

func (r *rig) start() *Manager {
	r.t.Helper()
	var connector Connector = r.srv
	if r.connector != nil {
		connector = r.connector
	}
	pipeline := r.pipeline
	if pipeline == nil {
		pipeline = logPipeline{r.log}
	}
	r.m = NewManager(r.cfg, r.log, r.store, connector, pipeline)
	if err := r.m.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	return r.m
}

// restart stops the manager and starts a new one over the same folders.
func (r *rig) restart() *Manager {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.m.Shutdown(ctx); err != nil {
		r.t.Fatal(err)
	}
	return r.start()
}

func (r *rig) newTenant(name string) string {
	r.t.Helper()
	ctx := context.Background()
	u, err := r.store.EnsureUser(ctx, strings.ToLower(strings.ReplaceAll(name, " ", ""))+"@example.com")
	if err != nil {
		r.t.Fatal(err)
	}
	tn, err := r.store.CreateTenant(ctx, u.ID, name, true)
	if err != nil {
		r.t.Fatal(err)
	}
	return tn.ID
}

func (r *rig) session(id string) tenant.Link {
	r.t.Helper()
	s, err := r.store.LinkOf(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) worker(id string) tenant.Worker {
	r.t.Helper()
	w, err := r.store.WorkerOf(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}

// waitSession polls the tenant's row until cond holds.
func (r *rig) waitSession(id string, timeout time.Duration, what string, cond func(tenant.Link) bool) tenant.Link {
	r.t.Helper()
	return fakewatest.WaitSession(r.t, r.store, id, timeout, what, cond)
}

var inState = fakewatest.InState

// link runs a link attempt and scans its first QR code with a new phone.
func (r *rig) link(id string) *fakewa.Phone { return r.linkWithin(id, 30*time.Second) }

func (r *rig) linkWithin(id string, timeout time.Duration) *fakewa.Phone {
	r.t.Helper()
	return fakewatest.Link(r.t, r.srv, r.m, r.store, id, timeout)
}

func decodeQR(t testing.TB, dataURI string) string {
	t.Helper()
	b64, ok := strings.CutPrefix(dataURI, "data:image/png;base64,")
	if !ok {
		t.Fatalf("not a PNG data URI: %.40s", dataURI)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w < 300 {
		t.Errorf("QR image is %d px wide; too small to scan from a screen", w)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// PURE_BARCODE: the image is generated, not photographed; without the
	// hint gozxing misreads about 1 in 100 valid codes (zbar reads them).
	res, err := gzqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("the QR image does not decode: %v", err)
	}
	return res.GetText()
}

func TestLinkStoresScannableQRThenConnects(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Acme")
	r.start()
	if s := r.session(id); s.State != tenant.StateQRPending {
		t.Fatalf("a new tenant waits for a link attempt; state %s", s.State)
	}
	ctx := context.Background()
	if err := r.m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	s := r.waitSession(id, 20*time.Second, "a QR code", inState(tenant.StateQRReady))
	if got := decodeQR(t, s.QRDataURI); got != s.QRCode || s.QRCode == "" {
		t.Fatalf("PNG decodes to %q, row holds %q", got, s.QRCode)
	}
	if s.QRUpdatedAt.IsZero() || !s.QRExpiresAt.After(s.QRUpdatedAt) {
		t.Fatalf("QR times %v %v", s.QRUpdatedAt, s.QRExpiresAt)
	}
	phone := r.srv.NewPhone("")
	jid, err := phone.Scan(ctx, s.QRCode)
	if err != nil {
		t.Fatal(err)
	}
	s = r.waitSession(id, 20*time.Second, "CONNECTED", inState(tenant.StateConnected))
	if s.JID != jid.ToNonAD().String() || s.ConnectedAt.IsZero() || s.QRCode != "" {
		t.Fatalf("connected row %+v, want jid %s", s, jid)
	}
	devs := phone.LinkedDevices()
	if len(devs) != 1 || devs[0].Name != "wabot" {
		t.Fatalf("the phone lists %+v; the device name should say wabot", devs)
	}
	if r.store.Dialect() == tenant.Postgres {
		if got, err := r.store.DeviceJID(context.Background(), id); err != nil || got != jid.String() {
			t.Fatalf("the tenant's device in PostgreSQL is %q (%v), want %s", got, err, jid)
		}
	} else if _, err := os.Stat(filepath.Join(r.cfg.SessionsDir, id, "whatsmeow.db")); err != nil {
		t.Fatalf("device store not under sessions/<tenantId>/: %v", err)
	}
	if w := r.worker(id); w.Status != tenant.WorkerRunning {
		t.Fatalf("worker %s", w.Status)
	}
}

func TestQRCodesRotateThenExpire(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{QRRefs: 3}, func(c *Config) {
		c.QRFirstTimeout = 400 * time.Millisecond
		c.QRNextTimeout = 300 * time.Millisecond
	})
	id := r.newTenant("Rotor")
	r.start()
	if err := r.m.Link(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	first := r.waitSession(id, 20*time.Second, "a QR code", inState(tenant.StateQRReady))
	second := r.waitSession(id, 5*time.Second, "a rotated code", func(s tenant.Link) bool {
		return s.State == tenant.StateQRReady && s.QRCode != first.QRCode
	})
	if decodeQR(t, second.QRDataURI) != second.QRCode || !second.QRUpdatedAt.After(first.QRUpdatedAt) {
		t.Fatal("the rotated image does not match the rotated code")
	}
	expired := r.waitSession(id, 5*time.Second, "QR_EXPIRED", inState(tenant.StateQRExpired))
	if expired.QRCode != "" || expired.QRDataURI != "" {
		t.Fatal("an expired session still shows a code")
	}
	// Nothing keeps connecting: the state stays, until a new attempt.
	time.Sleep(500 * time.Millisecond)
	if s := r.session(id); s.State != tenant.StateQRExpired {
		t.Fatalf("state moved to %s by itself", s.State)
	}
	if err := r.m.Link(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	again := r.waitSession(id, 10*time.Second, "a new code", inState(tenant.StateQRReady))
	if again.QRCode == first.QRCode || again.QRCode == second.QRCode {
		t.Fatal("a new attempt reused an old code")
	}
}

func TestRestartedManagerReconnectsWithoutQR(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Keeper")
	r.start()
	r.link(id)
	before := r.session(id)
	r.restart()
	r.waitSession(id, 20*time.Second, "CONNECTED after restart", func(s tenant.Link) bool {
		return s.State == tenant.StateConnected && s.ConnectedAt.After(before.ConnectedAt)
	})
	if s := r.session(id); s.QRCode != "" || s.JID != before.JID {
		t.Fatalf("after restart: %+v", s)
	}
}

func TestCutReconnectsAndResetsAttempts(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Cutter")
	r.start()
	r.link(id)
	jid := deviceJID(t, r, id)
	before := r.session(id)
	r.srv.RefuseConnections(2)
	r.srv.Cut(jid)
	s := r.waitSession(id, 20*time.Second, "CONNECTED again", func(s tenant.Link) bool {
		return s.State == tenant.StateConnected && s.ConnectedAt.After(before.ConnectedAt)
	})
	if s.ReconnectAttempts != 0 || s.Reconnects < 1 {
		t.Fatalf("attempts %d reconnects %d", s.ReconnectAttempts, s.Reconnects)
	}
}

func TestRefusedPastMaximumIsError(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Refused")
	r.start()
	r.link(id)
	jid := deviceJID(t, r, id)
	r.srv.RefuseFor(time.Hour)
	r.srv.Cut(jid)
	s := r.waitSession(id, 20*time.Second, "ERROR", inState(tenant.StateError))
	if s.ErrorCode != tenant.ProblemReconnectFailed || !strings.Contains(s.LastError, "Restart") || s.ReconnectAttempts != r.cfg.ReconnectMaxAttempts {
		t.Fatalf("error row %+v", s)
	}
	tn, _ := r.store.TenantByID(context.Background(), id)
	if tn.Status != tenant.StatusError {
		t.Fatalf("tenant status %s, want ERROR", tn.Status)
	}
	// Restart after the network is back: connected, tenant ACTIVE again.
	r.srv.RefuseFor(0)
	if err := r.m.Restart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "CONNECTED after restart", inState(tenant.StateConnected))
	tn, _ = r.store.TenantByID(context.Background(), id)
	if tn.Status != tenant.StatusActive {
		t.Fatalf("tenant status %s after recovery", tn.Status)
	}
}

func TestUnlinkIsLoggedOutAndFolderGone(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Unlinked")
	r.start()
	phone := r.link(id)
	if err := phone.Unlink(deviceJID(t, r, id)); err != nil {
		t.Fatal(err)
	}
	s := r.waitSession(id, 20*time.Second, "LOGGED_OUT", inState(tenant.StateLoggedOut))
	if s.ErrorCode != tenant.ProblemLoggedOut || s.JID != "" {
		t.Fatalf("row %+v", s)
	}
	waitGone(t, filepath.Join(r.cfg.SessionsDir, id))
	// A new link attempt works from there.
	r.link(id)
}

func TestFailure401AtStartIsLoggedOut(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Rejected")
	r.start()
	r.link(id)
	jid := deviceJID(t, r, id)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.m.Shutdown(ctx)
	r.srv.FailNextLogin(jid, fakewa.Failure{Reason: 401})
	r.start()
	r.waitSession(id, 20*time.Second, "LOGGED_OUT", inState(tenant.StateLoggedOut))
	waitGone(t, filepath.Join(r.cfg.SessionsDir, id))
}

func TestResetGivesANewQR(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Resetter")
	r.start()
	phone := r.link(id)
	if err := r.m.Reset(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	s := r.waitSession(id, 20*time.Second, "a new QR", inState(tenant.StateQRReady))
	if s.JID != "" || decodeQR(t, s.QRDataURI) != s.QRCode {
		t.Fatalf("after reset %+v", s)
	}
	// Reset only forgot the link locally; logout also tells WhatsApp.
	if n := len(phone.LinkedDevices()); n != 1 {
		t.Fatalf("phone lists %d devices after a local reset", n)
	}
	phone2 := r.srv.NewPhone("")
	if _, err := phone2.Scan(context.Background(), s.QRCode); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "CONNECTED", inState(tenant.StateConnected))
	if err := r.m.Logout(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "a new QR after logout", inState(tenant.StateQRReady))
	waitUntil(t, 5*time.Second, "the phone to drop the device", func() bool { return len(phone2.LinkedDevices()) == 0 })
}

func TestTerminalFailuresHaveTheirCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		inject func(r *rig, jid types.JID)
		code   tenant.Problem
	}{
		{"replaced", func(r *rig, jid types.JID) { r.srv.Replace(jid) }, tenant.ProblemReplaced},
		{"outdated", func(r *rig, jid types.JID) {
			r.srv.FailNextLogin(jid, fakewa.Failure{Reason: 405})
			r.srv.Cut(jid)
		}, tenant.ProblemOutdated},
		{"ban", func(r *rig, jid types.JID) {
			r.srv.FailNextLogin(jid, fakewa.Failure{Reason: 402, Code: 101, Expire: time.Hour})
			r.srv.Cut(jid)
		}, tenant.ProblemTemporaryBan},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, fakewa.Options{}, nil)
			id := r.newTenant("Failing " + c.name)
			r.start()
			r.link(id)
			c.inject(r, deviceJID(t, r, id))
			s := r.waitSession(id, 20*time.Second, "ERROR", inState(tenant.StateError))
			if s.ErrorCode != c.code || len(s.LastError) < 40 {
				t.Fatalf("error %q %q, want code %s with a sentence", s.ErrorCode, s.LastError, c.code)
			}
		})
	}
}

// panicOnce panics in the supervisor the first time a tenant comes online.
type panicOnce struct {
	target string
	fired  atomic.Bool
}

func (p *panicOnce) Attach(tenantID string, _ Sender) TenantPipeline {
	return &panicTenant{p: p, id: tenantID}
}

type panicTenant struct {
	p  *panicOnce
	id string
}

func (t *panicTenant) HandleMessage(*events.Message) bool { return true }
func (t *panicTenant) Detach()                            {}
func (t *panicTenant) Online(on bool) {
	if on && t.id == t.p.target && t.p.fired.CompareAndSwap(false, true) {
		panic("injected panic")
	}
}

func TestPanicCrashesOneTenantOnly(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	calm := r.newTenant("Calm")
	victim := r.newTenant("Victim")
	p := &panicOnce{target: victim}
	r.pipeline = p
	r.start()
	r.link(calm)
	calmBefore := r.session(calm)
	ctx := context.Background()
	if err := r.m.Link(ctx, victim); err != nil {
		t.Fatal(err)
	}
	s := r.waitSession(victim, 20*time.Second, "QR", inState(tenant.StateQRReady))
	if _, err := r.srv.NewPhone("").Scan(ctx, s.QRCode); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the victim's worker to crash", func() bool {
		return p.fired.Load() && r.worker(victim).Restarts >= 1
	})
	crashed := time.Now()
	waitUntil(t, 20*time.Second, "the victim RUNNING and CONNECTED after its restart", func() bool {
		w, s := r.worker(victim), r.session(victim)
		return w.Status == tenant.WorkerRunning && s.State == tenant.StateConnected && s.ConnectedAt.After(crashed.Add(-time.Second))
	})
	if c := r.session(calm); c.State != tenant.StateConnected || !c.ConnectedAt.Equal(calmBefore.ConnectedAt) || c.Reconnects != calmBefore.Reconnects {
		t.Fatalf("the other tenant noticed: %+v", c)
	}
}

func TestHeartbeatAdvances(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Beat")
	r.start()
	waitUntil(t, 5*time.Second, "a first heartbeat", func() bool { return !r.worker(id).LastSeenAt.IsZero() })
	first := r.worker(id).LastSeenAt
	waitUntil(t, 5*time.Second, "the heartbeat to advance", func() bool { return r.worker(id).LastSeenAt.After(first) })
	if w := r.worker(id); w.Status != tenant.WorkerRunning {
		t.Fatalf("worker %s", w.Status)
	}
}

func TestLinkByPhoneCode(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Coder")
	r.start()
	phone := r.srv.NewPhone("")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.m.LinkPhone(ctx, id, "12"); tenant.ErrorCode(err) != tenant.CodeInvalid {
		t.Fatalf("a short number gave %v", err)
	}
	code, err := r.m.LinkPhone(ctx, id, "+"+phone.Number())
	if err != nil {
		t.Fatal(err)
	}
	if s := r.session(id); s.PairCode != code || len(code) != 9 {
		t.Fatalf("code %q, row %q", code, s.PairCode)
	}
	if _, err := phone.EnterCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "CONNECTED", inState(tenant.StateConnected))
}

func TestSuspendStopsAndResumeReconnects(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	id := r.newTenant("Pauser")
	r.start()
	r.link(id)
	jid := deviceJID(t, r, id)
	ctx := context.Background()
	if err := r.m.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if w := r.worker(id); w.Status != tenant.WorkerStopped {
		t.Fatalf("worker %s after stop", w.Status)
	}
	waitUntil(t, 5*time.Second, "the device to go offline", func() bool { return !r.srv.Online(jid) })
	if err := r.m.Link(ctx, id); err != ErrNotRunning {
		t.Fatalf("a stopped tenant accepted a command: %v", err)
	}
	if err := r.m.Add(id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the device back online", func() bool { return r.srv.Online(jid) })
}

func TestSubscriberHearsStateChanges(t *testing.T) {
	t.Parallel()
	// No heartbeat: every signal comes from a change of state.
	r := newRig(t, fakewa.Options{}, func(c *Config) { c.HeartbeatInterval = time.Hour })
	id := r.newTenant("Watcher")
	other := r.newTenant("Bystander")
	r.start()
	for _, tid := range []string{id, other} {
		waitUntil(t, 5*time.Second, "the worker to run", func() bool { return r.worker(tid).Status == tenant.WorkerRunning })
	}
	changed, unsubscribe := r.m.Subscribe(id)
	otherChanged, unsubscribeOther := r.m.Subscribe(other)
	defer unsubscribeOther()
	// Following the signals alone, re-reading the row at each, reaches
	// the QR code and, after the scan, CONNECTED.
	following := func(want tenant.LinkState) tenant.Link {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case <-changed:
			case <-timeout:
				t.Fatalf("no signal brought %s; the row is %s", want, r.session(id).State)
			}
			if s := r.session(id); s.State == want {
				return s
			}
		}
	}
	ctx := context.Background()
	if err := r.m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	s := following(tenant.StateQRReady)
	if _, err := r.srv.NewPhone("").Scan(ctx, s.QRCode); err != nil {
		t.Fatal(err)
	}
	following(tenant.StateConnected)
	select {
	case <-otherChanged:
		t.Fatal("another tenant's subscriber was signalled")
	default:
	}
	unsubscribe()
	select {
	case <-changed:
	default:
	}
	if err := r.m.Restart(ctx, id); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "CONNECTED after restart", inState(tenant.StateConnected))
	select {
	case <-changed:
		t.Fatal("signalled after unsubscribing")
	default:
	}
	r.m.subscribers.mu.Lock()
	left := len(r.m.subscribers.byTenant[id])
	r.m.subscribers.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d subscribers left after unsubscribing", left)
	}
}

// TestTeardownEndsAPendingConnect: a connect waiting for a slot belongs to
// its client generation, and a restart has ended it by the time it
// returns. Not parallel: it counts the package's connect goroutines.
func TestTeardownEndsAPendingConnect(t *testing.T) {
	r := newRig(t, fakewa.Options{}, func(c *Config) { c.ConnectConcurrency = 1 })
	id := r.newTenant("Waiter")
	r.start()
	r.m.connectSem <- struct{}{} // the only slot: the link attempt's dial waits
	slotTaken := true
	defer func() {
		if slotTaken {
			<-r.m.connectSem
		}
	}()
	ctx := context.Background()
	if err := r.m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the dial to wait for a slot", func() bool { return connectGoroutines() == 1 })
	if err := r.m.Restart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := connectGoroutines(); n != 0 {
		t.Fatalf("%d connect goroutines outlived their client", n)
	}
	<-r.m.connectSem
	slotTaken = false
	if err := r.m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "a QR code", inState(tenant.StateQRReady))
}

func connectGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "wabot/session.(*supervisor).connect.func")
}

// panicFirstDial panics in the first websocket dial of any client.
type panicFirstDial struct {
	srv   *fakewa.Server
	fired atomic.Bool
}

func (p *panicFirstDial) Prepare(cli *whatsmeow.Client) error {
	if err := p.srv.Configure(cli); err != nil {
		return err
	}
	h := p.srv.HTTPClient()
	h.Transport = panicFirstRoundTrip{next: h.Transport, fired: &p.fired}
	cli.SetWebsocketHTTPClient(h)
	cli.SetPreLoginHTTPClient(h)
	return nil
}

type panicFirstRoundTrip struct {
	next  http.RoundTripper
	fired *atomic.Bool
}

func (p panicFirstRoundTrip) RoundTrip(req *http.Request) (*http.Response, error) {
	if p.fired.CompareAndSwap(false, true) {
		panic("injected dial panic")
	}
	return p.next.RoundTrip(req)
}

func TestPanicWhileConnectingFailsTheAttemptOnly(t *testing.T) {
	t.Parallel()
	r := newRig(t, fakewa.Options{}, nil)
	r.connector = &panicFirstDial{srv: r.srv}
	id := r.newTenant("Shaky")
	r.start()
	ctx := context.Background()
	if err := r.m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	s := r.waitSession(id, 20*time.Second, "ERROR", inState(tenant.StateError))
	if s.ErrorCode != tenant.ProblemConnectFailure || !strings.Contains(s.LastError, "panicked") {
		t.Fatalf("error row %+v", s)
	}
	if err := r.m.Link(ctx, id); err != nil {
		t.Fatal(err)
	}
	r.waitSession(id, 20*time.Second, "a QR code after the panic", inState(tenant.StateQRReady))
}

func deviceJID(t testing.TB, r *rig, id string) types.JID {
	t.Helper()
	s := r.session(id)
	jid, err := types.ParseJID(s.JID)
	if err != nil {
		t.Fatal(err)
	}
	devs := r.srv.NewPhone(jid.User).LinkedDevices()
	if len(devs) == 0 {
		t.Fatalf("no linked device for %s", s.JID)
	}
	return devs[len(devs)-1].JID
}

func waitGone(t testing.TB, path string) {
	t.Helper()
	waitUntil(t, 5*time.Second, path+" to be removed", func() bool {
		_, err := os.Stat(path)
		return os.IsNotExist(err)
	})
}

var waitUntil = rigtest.WaitFor

// logPipeline logs incoming messages and answers nothing: the stand-in
// for the bot in tests of the session layer alone.
type logPipeline struct{ log *slog.Logger }

func (p logPipeline) Attach(tenantID string, _ Sender) TenantPipeline {
	return logTenant{log: p.log.With("tenant", tenantID)}
}

type logTenant struct{ log *slog.Logger }

func (l logTenant) HandleMessage(evt *events.Message) bool {
	l.log.Info("message received", "chat", evt.Info.Chat.String(), "id", evt.Info.ID)
	return true
}
func (logTenant) Online(bool) {}
func (logTenant) Detach()     {}
