// Package session runs one supervisor goroutine per tenant, each owning the
// tenant's whatsmeow client and device store under sessions/<tenantId>/:
// linking by QR code or phone code, connection states, reconnect backoff,
// terminal failures, heartbeat, crash isolation, and the hand-off of
// incoming messages to the tenant's message pipeline.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"wabot/session/internal/signallog"
	"wabot/tenant"
)

// Config tunes the manager. Zero durations take the defaults in
// withDefaults; tests shorten them.
type Config struct {
	SessionsDir          string
	ReconnectMaxAttempts int
	HeartbeatInterval    time.Duration

	QRFirstTimeout     time.Duration // how long the first QR code is shown (60s)
	QRNextTimeout      time.Duration // how long each later code is shown (20s)
	ReconnectBaseDelay time.Duration // first reconnect backoff step (1s)
	ReconnectMaxDelay  time.Duration // backoff cap (1m)
	DialTimeout        time.Duration // a dial and its handshakes, before they are abandoned (30s)
	RestartBaseDelay   time.Duration // first restart delay after a crash (1s)
	RestartMaxDelay    time.Duration // cap (1m)
	ConnectConcurrency int           // tenants connecting at once at start (32)
	DeviceName         string        // shown in the phone's linked devices ("wabot")
	// Observer hears about reconnects (metrics); nil hears nothing. One
	// that is also a LeaseObserver hears about lease moves.
	Observer Observer
	// Devices keeps the tenants' device stores; nil means SQLiteDevices.
	Devices DeviceStores

	// Leases (leases.go): this instance's id (NewInstanceID), how often
	// leases are renewed (5s) and for how long (15s), how long before an
	// unrenewed lease expires the sessions stop (a third of the validity),
	// how many leases above the fair share are given up per round (2).
	InstanceID  string
	LeaseRenew  time.Duration
	LeaseValid  time.Duration
	LeaseMargin time.Duration
	LeaseShed   int
	// ControlPoll: how often control requests and queued sends are looked
	// for without a wake-up, and live pages of tenants running elsewhere
	// refreshed (1s).
	ControlPoll time.Duration
	// Waker wakes this instance for control requests; a PollWaker of
	// ControlPoll when nil.
	Waker tenant.Waker
	// ControlActor is who the audit log names for command-line requests.
	ControlActor tenant.User
}

// Observer is told about connection events, for metrics.
type Observer interface {
	Reconnect()
}

type noObserver struct{}

func (noObserver) Reconnect() {}

func (c Config) withDefaults() Config {
	if c.Devices == nil {
		c.Devices = SQLiteDevices{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.QRFirstTimeout, 60*time.Second)
	def(&c.QRNextTimeout, 20*time.Second)
	def(&c.ReconnectBaseDelay, time.Second)
	def(&c.DialTimeout, 30*time.Second)
	def(&c.ReconnectMaxDelay, time.Minute)
	def(&c.RestartBaseDelay, time.Second)
	def(&c.RestartMaxDelay, time.Minute)
	def(&c.HeartbeatInterval, 30*time.Second)
	if c.ReconnectMaxAttempts <= 0 {
		c.ReconnectMaxAttempts = 10
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 32
	}
	if c.DeviceName == "" {
		c.DeviceName = "wabot"
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	if c.InstanceID == "" {
		c.InstanceID = NewInstanceID()
	}
	def(&c.LeaseRenew, DefaultLeaseRenew)
	def(&c.LeaseValid, DefaultLeaseValid)
	def(&c.LeaseMargin, c.LeaseValid/3)
	if c.LeaseShed <= 0 {
		c.LeaseShed = 2
	}
	def(&c.ControlPoll, time.Second)
	if c.Waker == nil {
		c.Waker = tenant.NewPollWaker(c.ControlPoll)
	}
	if c.ControlActor.ID == "" {
		c.ControlActor = tenant.User{ID: "cli", Email: "command line"}
	}
	return c
}

// Connector prepares each new whatsmeow client before it connects. The
// production build connects to WhatsApp as is; the demo build points the
// client at the fake server.
type Connector interface {
	Prepare(cli *whatsmeow.Client) error
}

// DirectConnector is the production Connector: WhatsApp's own servers.
type DirectConnector struct{}

// Prepare leaves the client as whatsmeow made it.
func (DirectConnector) Prepare(*whatsmeow.Client) error { return nil }

// Sender sends a tenant's replies through its current client.
type Sender interface {
	// SendText sends text to chat with the given message id; sending the
	// same id twice is harmless, since WhatsApp keeps one message per id.
	SendText(ctx context.Context, chat types.JID, id, text string) error
	// NewMessageID returns a fresh WhatsApp message id.
	NewMessageID() string
	// OwnJID is the linked number's JID (empty when not linked).
	OwnJID() types.JID
	// SendMessage is SendText for any message (quoted replies).
	SendMessage(ctx context.Context, chat types.JID, id string, msg *waE2E.Message) error
	// Typing shows (or stops showing) "typing…" in chat.
	Typing(ctx context.Context, chat types.JID, on bool) error
	// IsOnWhatsApp asks WhatsApp which of phones ("+15551234567") have
	// an account.
	IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error)
	// DownloadToFile fetches a media message's file into file, decrypted
	// and checked against the message's hashes, without holding it in
	// memory.
	DownloadToFile(ctx context.Context, msg whatsmeow.DownloadableMessage, file *os.File) error
	// Upload encrypts a file and uploads it to WhatsApp's media servers,
	// for a media message to point to.
	Upload(ctx context.Context, data []byte, kind whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	// MarkRead tells WhatsApp that messages ids of sender in chat were
	// read (blue ticks on the customer's phone).
	MarkRead(ctx context.Context, chat, sender types.JID, ids []string) error
	// PhoneOfLID returns the phone-number JID whatsmeow knows for a
	// linked id (an @lid JID), or an empty JID when it knows none, so one
	// person is one chat however WhatsApp addresses them.
	PhoneOfLID(ctx context.Context, lid types.JID) (types.JID, error)
}

// ReceiptHandler is a TenantPipeline that also hears WhatsApp's delivery
// and read receipts for what the tenant sent. It runs on whatsmeow's
// goroutine and must return quickly.
type ReceiptHandler interface {
	HandleReceipt(evt *events.Receipt)
}

// Pipeline receives every tenant's incoming messages. The bot implements
// it; Attach is called once per supervisor run.
type Pipeline interface {
	Attach(tenantID string, out Sender) TenantPipeline
}

// TenantPipeline is one tenant's share of the Pipeline.
type TenantPipeline interface {
	// HandleMessage stores an incoming message durably and queues it for
	// an answer. It returns false when the message could not be stored:
	// WhatsApp is then not told it was received, and delivers it again.
	HandleMessage(evt *events.Message) bool
	// Online tells the pipeline whether replies can be sent now.
	Online(on bool)
	// Detach stops the tenant's pipeline work and waits for it.
	Detach()
}

// Manager owns every tenant's supervisor.
type Manager struct {
	cfg        Config
	log        *slog.Logger
	store      *tenant.Store
	connector  Connector
	pipeline   Pipeline
	connectSem chan struct{}

	subscribers subscribers
	lease       leases // leases.go

	mu       sync.Mutex
	sups     map[string]*supervisor
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	shutdown bool
}

// deviceNameOnce guards whatsmeow's package-level device name: set once per
// process, before any client reads it.
var deviceNameOnce sync.Once

// NewManager returns a Manager; Start launches the supervisors. pipeline
// receives every tenant's messages (the bot).
func NewManager(cfg Config, log *slog.Logger, st *tenant.Store, connector Connector, pipeline Pipeline) *Manager {
	signallog.Install()
	if connector == nil {
		connector = DirectConnector{}
	}
	if st.Dialect() == tenant.SQLite {
		// An SQLite file serves one instance: it keeps one id across
		// restarts, so it takes its tenants back at once after a crash,
		// and long leases, so a writer slowed by load never makes it stop
		// its own sessions for fear of an instance that cannot exist.
		if cfg.InstanceID == "" {
			cfg.InstanceID = SQLiteInstanceID
		}
		if cfg.LeaseValid <= 0 {
			cfg.LeaseValid = SQLiteLeaseValid
		}
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, log: log.With("instance", cfg.InstanceID), store: st, connector: connector, pipeline: pipeline,
		connectSem: make(chan struct{}, cfg.ConnectConcurrency),
		sups:       map[string]*supervisor{}, ctx: ctx, cancel: cancel,
	}
	m.lease.init()
	return m
}

// setDeviceName sets the name the phone lists for linked devices. It is a
// whatsmeow package variable read by connecting clients, so it is set once,
// before the first client exists.
func (m *Manager) setDeviceName() {
	deviceNameOnce.Do(func() {
		store.DeviceProps.Os = &m.cfg.DeviceName
	})
}

// Start claims this instance's share of the tenant leases and launches a
// supervisor for every tenant it holds that is not suspended (with one
// instance: every tenant), then keeps the leases (leases.go). Tenants with
// a stored device connect at once (ConnectConcurrency at a time); the
// others wait for a link attempt.
func (m *Manager) Start(ctx context.Context) error {
	m.setDeviceName()
	if err := m.startLeases(ctx); err != nil {
		return fmt.Errorf("claiming tenant leases: %w", err)
	}
	return nil
}

// Add starts the tenant's supervisor if it is not running (new tenant,
// resume after suspension): here when this instance holds or can claim
// its lease, otherwise on the instance holding it.
func (m *Manager) Add(tenantID string) error {
	if !tenant.ValidTenantID(tenantID) {
		return fmt.Errorf("refusing tenant id %q: not one wabot generated", tenantID)
	}
	m.setDeviceName()
	m.lease.park(tenantID, false)
	if l, ok := m.lease.lease(tenantID); ok {
		if m.lease.isShedding(tenantID) {
			return nil // moving to another instance, which starts it
		}
		return m.startSupervisor(tenantID, l.Epoch)
	}
	ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
	defer cancel()
	_, owner, err := m.target(ctx, tenantID)
	if owner != "" {
		// The owner starts it; nobody waits for that here.
		_, err = m.store.AskControl(ctx, tenant.ControlRequest{TenantID: tenantID, Action: tenant.ControlStart, ExpiresAt: time.Now().Add(time.Minute)})
		m.cfg.Waker.Notify(ctx, controlChannelPrefix+owner)
	}
	if errors.Is(err, ErrNotRunning) {
		return nil // a suspended tenant, resumed by its status
	}
	return err
}

// Stop stops the tenant's supervisor (suspension), disconnecting its
// client and keeping its link, here or on the instance running it.
func (m *Manager) Stop(ctx context.Context, tenantID string) error {
	m.mu.Lock()
	s := m.sups[tenantID]
	delete(m.sups, tenantID)
	m.mu.Unlock()
	m.lease.park(tenantID, true)
	if s == nil {
		if _, ok := m.lease.lease(tenantID); ok {
			return nil
		}
		owner, l, err := m.store.LeaseOf(ctx, tenantID)
		if err != nil || owner == "" || owner == m.cfg.InstanceID || !l.ExpiresAt.After(time.Now()) {
			return err
		}
		_, err = m.ask(ctx, owner, tenantID, tenant.ControlStop, "")
		return err
	}
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Running reports whether the tenant has a supervisor here.
func (m *Manager) Running(tenantID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sups[tenantID] != nil
}

// ErrNotRunning is returned for commands to a tenant without a supervisor
// (suspended, or unknown).
var ErrNotRunning = &tenant.Error{Code: tenant.CodeConflict, Msg: "this workspace's session is not running (suspended?)"}

func (m *Manager) get(tenantID string) (*supervisor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sups[tenantID]
	if s == nil {
		return nil, ErrNotRunning
	}
	return s, nil
}

// Link starts a link attempt: new QR codes, unless the tenant is linked.
func (m *Manager) Link(ctx context.Context, tenantID string) error {
	_, err := m.command(ctx, tenantID, command{kind: cmdLink})
	return err
}

// LinkPhone starts pairing by phone-number code and returns the
// 8-character code to type on the phone.
func (m *Manager) LinkPhone(ctx context.Context, tenantID, phone string) (string, error) {
	return m.command(ctx, tenantID, command{kind: cmdLinkPhone, phone: phone})
}

// Restart reconnects the tenant's client, keeping its link.
func (m *Manager) Restart(ctx context.Context, tenantID string) error {
	_, err := m.command(ctx, tenantID, command{kind: cmdRestart})
	return err
}

// Reset disconnects, deletes sessions/<tenantId>/ and starts a new link
// attempt: the seed's manual reset in one call.
func (m *Manager) Reset(ctx context.Context, tenantID string) error {
	_, err := m.command(ctx, tenantID, command{kind: cmdReset})
	return err
}

// Logout unlinks the device from WhatsApp (when it can reach it), then
// resets.
func (m *Manager) Logout(ctx context.Context, tenantID string) error {
	_, err := m.command(ctx, tenantID, command{kind: cmdLogout})
	return err
}

// Shutdown stops every supervisor in parallel; each disconnects its client.
// It returns when all have stopped or ctx ends.
// Then it releases this instance's leases, so another instance takes
// the tenants within seconds; a session that did not stop in time keeps
// its lease until it expires.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	first := !m.shutdown
	m.shutdown = true
	m.mu.Unlock()
	if first {
		m.stopLeaseLoops(ctx)
	}
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("sessions did not stop in time: %w", ctx.Err())
	}
	if !first {
		return nil
	}
	if err := m.releaseLeases(ctx); err != nil {
		m.log.Warn("cannot release tenant leases; other instances take them when they expire", "err", err)
	}
	return nil
}

// dir is the tenant's device store folder; the id was validated by Add.
func (m *Manager) dir(tenantID string) string {
	return filepath.Join(m.cfg.SessionsDir, tenantID)
}

func removeDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}
