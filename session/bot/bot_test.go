package bot

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"wabot/session"
	"wabot/session/fakewa"
	"wabot/session/fakewa/fakewatest"
	"wabot/session/fakewa/rigtest"
	"wabot/tenant"
	"wabot/tenant/tenanttest"
)

// rig: a real app database, a fake WhatsApp server, the session manager
// and the bot, with tenants linked to simulated phones.
type rig struct {
	t     *testing.T
	dir   string
	store *tenant.Store
	srv   *fakewa.Server
	opts  Options
	bot   *Bot
	m     *session.Manager
	log   *slog.Logger
	// devices holds the device stores in PostgreSQL; nil for SQLite files.
	devices session.DeviceStores
}

func newRig(t *testing.T, opts Options) *rig {
	t.Helper()
	dir := t.TempDir()
	log := rigtest.Logger("BOT_LOG")
	// SQLite files, or PostgreSQL with WABOT_TEST_BACKEND=postgres.
	st := tenanttest.Open(t)
	var devices session.DeviceStores
	if st.Dialect() == tenant.Postgres {
		pg, err := session.NewPostgresDevices(context.Background(), tenanttest.URL(t, st), st, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		devices = pg
	}
	srv := fakewatest.NewServer(t, fakewa.Options{})
	if opts.Media == nil {
		media, err := tenant.NewMediaStore(st, filepath.Join(dir, "media"), tenant.DefaultMediaLimits())
		if err != nil {
			t.Fatal(err)
		}
		opts.Media = media
	}
	r := &rig{t: t, dir: dir, store: st, srv: srv, opts: opts, log: log, devices: devices}
	t.Cleanup(r.stop)
	r.start()
	return r
}

func (r *rig) start() {
	r.bot = New(r.opts, r.log, r.store)
	r.bot.Start()
	r.m = session.NewManager(session.Config{SessionsDir: filepath.Join(r.dir, "sessions"), ReconnectBaseDelay: 20 * time.Millisecond, Devices: r.devices},
		r.log, r.store, r.srv, r.bot)
	if err := r.m.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) stop() {
	if r.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.m.Shutdown(ctx)
	r.bot.Close()
	r.m = nil
}

// tenant creates an ACTIVE tenant with cfg, links it, and returns its id
// and phone.
func (r *rig) tenant(cfg tenant.BotConfig) (string, *fakewa.Phone) {
	r.t.Helper()
	ctx := context.Background()
	u, err := r.store.EnsureUser(ctx, "owner"+tenantSeq()+"@example.com")
	if err != nil {
		r.t.Fatal(err)
	}
	tn, err := r.store.CreateTenant(ctx, u.ID, "Shop", true)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.bot.SaveConfig(ctx, tn.ID, cfg); err != nil {
		r.t.Fatal(err)
	}
	if err := r.m.Add(tn.ID); err != nil {
		r.t.Fatal(err)
	}
	return tn.ID, fakewatest.Link(r.t, r.srv, r.m, r.store, tn.ID, 30*time.Second)
}

var seq atomic.Int64

func tenantSeq() string { return string(rune('a'+seq.Add(1)%26)) + time.Now().Format("150405.000000") }

func (r *rig) wait(id, what string, cond func(tenant.Link) bool) tenant.Link {
	r.t.Helper()
	return fakewatest.WaitSession(r.t, r.store, id, 30*time.Second, what, cond)
}

// logs returns the tenant's log, oldest first.
func (r *rig) logs(id string) []tenant.Message {
	r.t.Helper()
	ms, _, err := r.store.Messages(context.Background(), id, tenant.MessageQuery{Limit: 200})
	if err != nil {
		r.t.Fatal(err)
	}
	for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
		ms[i], ms[j] = ms[j], ms[i]
	}
	return ms
}

func (r *rig) waitLogs(id, what string, cond func([]tenant.Message) bool) []tenant.Message {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms := r.logs(id)
		if cond(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; log: %s", what, describe(ms))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func describe(ms []tenant.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("\n  " + m.Direction + " " + string(m.Status) + " " + m.Body + " " + m.Error)
	}
	return b.String()
}

func count(ms []tenant.Message, dir string, status tenant.MessageStatus) int {
	n := 0
	for _, m := range ms {
		if m.Direction == dir && (status == "" || m.Status == status) {
			n++
		}
	}
	return n
}

// expect reads the contact's next message and checks its text.
func expect(t *testing.T, c *fakewa.Contact, want string) {
	t.Helper()
	got, err := c.Next(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != want {
		t.Fatalf("contact got %q, want %q", got.Text, want)
	}
}

func expectNothing(t *testing.T, c *fakewa.Contact, within time.Duration) {
	t.Helper()
	if got, err := c.Next(within); err == nil {
		t.Fatalf("contact got an unexpected %q", got.Text)
	}
}

func rules(rs ...tenant.Rule) tenant.BotConfig {
	cfg := tenant.DefaultBotConfig()
	cfg.Rules = rs
	return cfg
}

func TestRulesFallbackWelcomeAndTemplates(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(
		tenant.Rule{Match: tenant.MatchContains, Pattern: "hours", Reply: "Open 9-17, {{name}}!"},
		tenant.Rule{Match: tenant.MatchRegex, Pattern: `^order\s+(\d+)$`, Reply: "Order noted: {{text}} from {{phone}}"},
	)
	cfg.WelcomeReply = "Welcome to the shop, {{name}}."
	cfg.FallbackReply = "Sorry, I did not get that."
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("15550007777", "Ann")

	ann.Send("What are your HOURS?")
	expect(t, ann, "Welcome to the shop, Ann.")
	expect(t, ann, "Open 9-17, Ann!")
	ann.Send("order 42")
	expect(t, ann, "Order noted: order 42 from +15550007777")
	ann.Send("bananas")
	expect(t, ann, "Sorry, I did not get that.")

	bob := phone.NewContact("", "")
	bob.Send("hours?")
	expect(t, bob, "Welcome to the shop, +"+bob.JID().User+".")
	expect(t, bob, "Open 9-17, +"+bob.JID().User+"!")

	ms := r.waitLogs(id, "every message logged", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReplied) == 4 && count(ms, "out", tenant.MsgReplied) == 6
	})
	for _, m := range ms {
		if m.Direction == "in" && m.SenderName == "Ann" && m.Chat != "15550007777@s.whatsapp.net" {
			t.Fatalf("chat %q", m.Chat)
		}
	}
}

func TestConfigChangesApplyToTheNextMessage(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchExact, Pattern: "ping", Reply: "pong"}))
	ann := phone.NewContact("", "Ann")
	ann.Send("ping")
	expect(t, ann, "pong")
	if _, err := r.bot.SaveConfig(context.Background(), id, rules(tenant.Rule{Match: tenant.MatchExact, Pattern: "ping", Reply: "PONG v2"})); err != nil {
		t.Fatal(err)
	}
	ann.Send("ping")
	expect(t, ann, "PONG v2")
	cfg := rules()
	cfg.Enabled = false
	cfg.FallbackReply = "never sent"
	if _, err := r.bot.SaveConfig(context.Background(), id, cfg); err != nil {
		t.Fatal(err)
	}
	ann.Send("ping")
	expectNothing(t, ann, time.Second)
	r.waitLogs(id, "the last message ignored", func(ms []tenant.Message) bool {
		return len(ms) > 0 && ms[len(ms)-1].Status == tenant.MsgIgnored && strings.Contains(ms[len(ms)-1].Error, "turned off")
	})
}

func TestRedeliveredMessageIsAnsweredOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello"}))
	ann := phone.NewContact("", "Ann")
	msgID, _ := ann.Send("hi")
	expect(t, ann, "hello")
	if err := ann.Redeliver(msgID); err != nil {
		t.Fatal(err)
	}
	r.waitLogs(id, "a duplicate row", func(ms []tenant.Message) bool { return count(ms, "in", tenant.MsgDuplicate) == 1 })
	expectNothing(t, ann, time.Second)
	ms := r.logs(id)
	if count(ms, "out", "") != 1 {
		t.Fatalf("answered %d times: %s", count(ms, "out", ""), describe(ms))
	}
	// Across a restart too: the de-duplication is in the database.
	r.stop()
	r.start()
	r.wait(id, "CONNECTED", func(s tenant.Link) bool { return s.State == tenant.StateConnected })
	ann.Redeliver(msgID)
	r.waitLogs(id, "a second duplicate row", func(ms []tenant.Message) bool { return count(ms, "in", tenant.MsgDuplicate) == 2 })
	expectNothing(t, ann, time.Second)
}

func TestCrashBetweenStoringAndAnsweringAnswersOnceAfterStart(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	id, phone := r.tenant(rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hi", Reply: "hello after restart"}))
	// Stop, and leave the row a process that died right after storing
	// (and acknowledging) a message would have left.
	r.stop()
	ann := phone.NewContact("", "Ann")
	if _, _, err := r.store.StoreInbound(context.Background(), id, tenant.Inbound{
		Chat: ann.JID().String(), Sender: ann.JID().String(), SenderName: "Ann",
		WAID: "3EB0CRASHED", Kind: "text", Body: "hi there", Status: tenant.MsgReceived,
	}); err != nil {
		t.Fatal(err)
	}
	r.start()
	expect(t, ann, "hello after restart")
	expectNothing(t, ann, time.Second)
	ms := r.logs(id)
	if count(ms, "in", tenant.MsgReplied) != 1 || count(ms, "out", tenant.MsgReplied) != 1 {
		t.Fatalf("log after restart: %s", describe(ms))
	}
}

func TestRateLimitLogsRateLimited(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "q", Reply: "a"})
	cfg.Limits.PerChatPerMinute = 2
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	for range 4 {
		ann.Send("q")
	}
	ms := r.waitLogs(id, "4 answers or limits", func(ms []tenant.Message) bool {
		return count(ms, "in", tenant.MsgReplied)+count(ms, "in", tenant.MsgRateLimited) == 4
	})
	if count(ms, "out", tenant.MsgReplied) != 2 || count(ms, "out", tenant.MsgRateLimited) != 2 || count(ms, "in", tenant.MsgRateLimited) != 2 {
		t.Fatalf("log: %s", describe(ms))
	}
	expect(t, ann, "a")
	expect(t, ann, "a")
	expectNothing(t, ann, 500*time.Millisecond)
}

// hook is a webhook receiver that checks signatures.
type hook struct {
	t       *testing.T
	secret  string
	mu      sync.Mutex
	got     []payload
	fail    atomic.Bool
	block   chan struct{}
	reply   string
	srv     *httptest.Server
	sigFail atomic.Int32
}

func newHook(t *testing.T, reply string) *hook {
	h := &hook{t: t, reply: reply}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if verifyWebhook(h.secret, req.Header, body, time.Now()) != nil || req.Header.Get("X-Wabot-Delivery") == "" {
			h.sigFail.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if h.block != nil {
			<-h.block
		}
		if h.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var p payload
		json.Unmarshal(body, &p)
		h.mu.Lock()
		h.got = append(h.got, p)
		h.mu.Unlock()
		if h.reply != "" {
			json.NewEncoder(w).Encode(map[string]string{"reply": h.reply + " " + p.Message.Text})
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) texts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range h.got {
		out = append(out, p.Message.Text)
	}
	return out
}

func TestWebhookIsSignedAndItsReplyUsed(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{AllowPrivateWebhooks: true})
	h := newHook(t, "webhook says")
	h.secret = "s3cret"
	cfg := rules(tenant.Rule{Match: tenant.MatchExact, Pattern: "rule", Reply: "rule says"})
	cfg.Webhook = tenant.Webhook{URL: h.srv.URL + "/in", Secret: h.secret}
	_, phone := r.tenant(cfg)
	ann := phone.NewContact("15550004444", "Ann")
	ann.Send("rule")
	expect(t, ann, "rule says") // a matching rule wins; the webhook still hears it
	ann.Send("free text")
	expect(t, ann, "webhook says free text")
	waitFor(t, "both deliveries", func() bool { return len(h.texts()) == 2 })
	h.mu.Lock()
	byText := map[string]payload{}
	for _, p := range h.got {
		byText[p.Message.Text] = p
	}
	h.mu.Unlock()
	p := byText["free text"]
	if p.Message.From != "+15550004444" || p.Message.Name != "Ann" || p.RuleMatched || !byText["rule"].RuleMatched || p.DeliveryID == "" {
		t.Fatalf("payloads %+v", byText)
	}
	if h.sigFail.Load() != 0 {
		t.Fatal("a delivery had a bad signature")
	}
}

func TestWebhookDownThenBackGetsEveryDeliveryAcrossARestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{AllowPrivateWebhooks: true, WebhookBaseDelay: 50 * time.Millisecond, WebhookMaxDelay: 200 * time.Millisecond,
		OutboxPoll: 50 * time.Millisecond, WebhookMaxAttempts: 100})
	h := newHook(t, "")
	h.secret = "k"
	h.fail.Store(true)
	cfg := rules()
	cfg.Webhook = tenant.Webhook{URL: h.srv.URL, Secret: h.secret}
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	for _, m := range []string{"one", "two", "three"} {
		ann.Send(m)
	}
	r.waitLogs(id, "three messages", func(ms []tenant.Message) bool { return count(ms, "in", tenant.MsgIgnored) == 3 })
	var attempts int
	waitFor(t, "failed attempts", func() bool {
		ds, err := r.store.WebhookDeliveries(context.Background(), id, 10)
		if err != nil || len(ds) == 0 {
			return false
		}
		attempts = ds[0].Attempts
		for _, d := range ds {
			attempts = min(attempts, d.Attempts)
		}
		return attempts >= 2
	})
	r.stop()
	h.fail.Store(false)
	r.start()
	waitFor(t, "every delivery after the webhook recovered", func() bool { return len(h.texts()) == 3 })
	got := strings.Join(h.texts(), ",")
	for _, m := range []string{"one", "two", "three"} {
		if !strings.Contains(got, m) {
			t.Fatalf("deliveries %s lack %s", got, m)
		}
	}
}

func TestPrivateWebhookRefusedByDefault(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	ctx := context.Background()
	u, _ := r.store.EnsureUser(ctx, "p@example.com")
	tn, _ := r.store.CreateTenant(ctx, u.ID, "P", true)
	for _, u := range []string{"http://127.0.0.1:9/hook", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest"} {
		cfg := rules()
		cfg.Webhook.URL = u
		_, err := r.bot.SaveConfig(ctx, tn.ID, cfg)
		var e *tenant.Error
		if !errorsAs(err, &e) || e.Fields["webhook.url"] == "" {
			t.Fatalf("%s accepted: %v", u, err)
		}
	}
}

func TestQueueOverflowSendsOneBusyReplyAndDrops(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{AllowPrivateWebhooks: true})
	h := newHook(t, "")
	h.secret = "k"
	h.block = make(chan struct{})
	cfg := rules()
	cfg.Limits.QueuePerChat = 2
	cfg.BusyReply = "busy, one moment"
	cfg.FallbackReply = "answer"
	cfg.Webhook = tenant.Webhook{URL: h.srv.URL, Secret: h.secret}
	id, phone := r.tenant(cfg)
	ann := phone.NewContact("", "Ann")
	for range 6 {
		ann.Send("x")
	}
	// The first message waits on the webhook; two are queued; three are
	// dropped with a single busy reply.
	expect(t, ann, "busy, one moment")
	ms := r.waitLogs(id, "three dropped", func(ms []tenant.Message) bool { return count(ms, "in", tenant.MsgDropped) == 3 })
	close(h.block)
	ms = r.waitLogs(id, "the first and the queued ones answered", func(ms []tenant.Message) bool { return count(ms, "in", tenant.MsgReplied) == 3 })
	for range 3 {
		expect(t, ann, "answer")
	}
	expectNothing(t, ann, 500*time.Millisecond)
	if n := count(ms, "out", "") - 3; n != 1 {
		t.Fatalf("%d busy replies: %s", n, describe(ms))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	rigtest.WaitFor(t, 30*time.Second, what, cond)
}

func TestGroupMessagesIgnoredUnlessEnabled(t *testing.T) {
	t.Parallel()
	r := newRig(t, Options{})
	cfg := rules(tenant.Rule{Match: tenant.MatchContains, Pattern: "hello", Reply: "hi there"})
	id, phone := r.tenant(cfg)
	group, _ := types.ParseJID("120363000000000001@g.us")
	ann := phone.NewContact("", "Ann")
	if _, err := ann.SendGroup(group, "hello group"); err != nil {
		t.Fatal(err)
	}
	ms := r.waitLogs(id, "the group message logged", func(ms []tenant.Message) bool { return count(ms, "in", "") == 1 })
	if ms[0].Status != tenant.MsgIgnored || ms[0].Chat != group.String() || ms[0].Body != "hello group" || !strings.Contains(ms[0].Error, "group") {
		t.Fatalf("group message logged as %+v", ms[0])
	}
	// A 1:1 message in between still gets its answer.
	ann.Send("hello direct")
	expect(t, ann, "hi there")
	// Enabled, the next group message is answered in the group.
	cfg.ReplyInGroups = true
	if _, err := r.bot.SaveConfig(context.Background(), id, cfg); err != nil {
		t.Fatal(err)
	}
	ann.SendGroup(group, "hello again")
	expect(t, ann, "hi there")
	ms = r.waitLogs(id, "the group reply logged", func(ms []tenant.Message) bool {
		return count(ms, "out", tenant.MsgReplied) == 2
	})
	if last := ms[len(ms)-1]; last.Chat != group.String() || last.Direction != "out" {
		t.Fatalf("the group reply went to %s", last.Chat)
	}
}
