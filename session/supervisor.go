package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"wabot/tenant"
)

type cmdKind int

const (
	cmdLink cmdKind = iota
	cmdLinkPhone
	cmdRestart
	cmdReset
	cmdLogout
)

type command struct {
	kind  cmdKind
	phone string
	reply chan cmdResult
}

type cmdResult struct {
	code string
	err  error
}

// Events the supervisor posts to itself from other goroutines.
type (
	clientEvent struct {
		gen int
		evt any
	}
	reconnectFailed struct {
		attempts int
		err      error
	}
	connectResult   struct{ err error }
	phoneCodeResult struct {
		cmd  command
		code string
		err  error
	}
)

// client is one generation of a tenant's whatsmeow client with its store.
type client struct {
	gen       int
	cli       *whatsmeow.Client
	db        *sql.DB
	container *sqlstore.Container
}

// supervisor owns one tenant's whatsmeow client. Its loop goroutine is the
// only writer of the tenant's session and worker rows; whatsmeow's
// handlers post events to it and never wait on it for long.
type supervisor struct {
	m      *Manager
	id     string
	log    *slog.Logger
	dir    string
	ctx    context.Context
	cancel context.CancelFunc
	cmds   chan command
	events chan clientEvent
	done   chan struct{}

	// Owned by the loop goroutine.
	sess         tenant.Session
	worker       tenant.Worker
	client       *client
	gen          int
	qrCodes      []string
	qrShown      int
	qrTimer      *time.Timer
	retryTimer   *time.Timer
	phoneWaiting []command
	pipe         TenantPipeline

	// What whatsmeow's and the pipeline's goroutines may read: the
	// current client, its generation and the tenant's pipeline.
	currentMu   sync.RWMutex
	current     *whatsmeow.Client
	currentGen  int
	currentPipe TenantPipeline

	attempts atomic.Int32 // failed reconnects since the last login

	// sessDirty: the last session row write failed (the database was too
	// busy); the heartbeat writes it again, so the row catches up.
	sessDirty bool
}

func newSupervisor(m *Manager, id string) *supervisor {
	ctx, cancel := context.WithCancel(m.ctx)
	return &supervisor{
		m: m, id: id, log: m.log.With("tenant", id), dir: m.dir(id),
		ctx: ctx, cancel: cancel,
		cmds:   make(chan command),
		events: make(chan clientEvent, 64),
		done:   make(chan struct{}),
	}
}

// do sends a command to the loop and waits for its answer.
func (s *supervisor) do(ctx context.Context, c command) (string, error) {
	c.reply = make(chan cmdResult, 1)
	select {
	case s.cmds <- c:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-s.done:
		return "", ErrNotRunning
	}
	select {
	case r := <-c.reply:
		return r.code, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	case <-s.done:
		return "", ErrNotRunning
	}
}

// post hands an event to the loop from another goroutine.
func (s *supervisor) post(gen int, evt any) {
	select {
	case s.events <- clientEvent{gen: gen, evt: evt}:
	case <-s.ctx.Done():
	}
}

// loop runs the supervisor, restarting it with backoff after a panic so a
// bug that hits one tenant never takes down the others.
func (s *supervisor) loop() {
	defer close(s.done)
	cfg := s.m.cfg
	delay := cfg.RestartBaseDelay
	if w, err := s.m.store.WorkerOf(s.ctx, s.id); err == nil {
		s.worker = w
	}
	s.worker.TenantID = s.id
	for {
		if !s.runOnce() || s.ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(jitter(delay)):
		case <-s.ctx.Done():
			s.saveWorker(tenant.WorkerStopped)
			return
		}
		delay = min(delay*2, cfg.RestartMaxDelay)
		s.worker.Restarts++
	}
}

// runOnce runs the supervisor until it is stopped (false) or panics
// (true).
func (s *supervisor) runOnce() (crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("tenant supervisor crashed; restarting it", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			crashed = true
			s.safely(s.teardown)
			s.safely(func() {
				if s.pipe != nil {
					s.pipe.Detach()
					s.pipe = nil
				}
			})
			s.saveWorker(tenant.WorkerCrashed)
		}
	}()
	s.saveWorker(tenant.WorkerStarting)
	sess, err := s.m.store.SessionOf(s.ctx, s.id)
	if err != nil {
		if s.ctx.Err() != nil {
			return false
		}
		panic(fmt.Errorf("reading session row: %w", err))
	}
	s.sess = sess
	s.pipe = s.m.pipeline.Attach(s.id, s)
	defer func() {
		if s.pipe != nil {
			s.pipe.Detach()
			s.pipe = nil
		}
	}()
	s.start()
	s.saveWorker(tenant.WorkerRunning)

	heartbeat := time.NewTicker(s.m.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case <-s.ctx.Done():
			s.teardown()
			s.saveWorker(tenant.WorkerStopped)
			return false
		case c := <-s.cmds:
			s.handleCommand(c)
		case e := <-s.events:
			s.handleEvent(e)
		case <-heartbeat.C:
			if s.sessDirty {
				s.saveSession()
			}
			s.saveWorker(tenant.WorkerRunning)
		case <-timerC(s.qrTimer):
			s.qrTimer = nil
			s.showNextQR()
		case <-timerC(s.retryTimer):
			s.retryTimer = nil
			s.connect()
		}
	}
}

func (s *supervisor) safely(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic while cleaning up", "panic", fmt.Sprint(r))
		}
	}()
	fn()
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// start opens the device store and connects a linked device at once; an
// unlinked tenant waits for a link attempt, unless its link was just lost
// by deleting its folder (a manual reset), which starts one.
func (s *supervisor) start() {
	if err := s.openClient(); err != nil {
		s.fail(CodeStoreFailed, storeFailedText(err))
		return
	}
	if s.client.cli.Store.ID != nil {
		s.connect()
		return
	}
	switch s.sess.State {
	case tenant.StateConnected, tenant.StateDisconnected:
		s.log.Info("device store is gone: starting a new link attempt")
		s.resetRow()
		s.beginLink()
	case tenant.StateQRReady:
		s.clearQR()
		s.sess.State = tenant.StateQRExpired
		s.saveSession()
	}
}

// Per-connection SQLite caches of a device store, kept small so idle
// tenants stay small: 64 KiB of pages and 24 prepared statements (enough
// for whatsmeow's per-message queries).
const (
	dsnCacheSize     = "-64"
	dsnStmtCacheSize = "24"
)

func (s *supervisor) openClient() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", tenant.SQLiteDSN(filepath.Join(s.dir, "whatsmeow.db"), "_cache_size", dsnCacheSize, "_stmt_cache_size", dsnStmtCacheSize))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(time.Minute)
	wlog := newWALogger(s.log)
	container := sqlstore.NewWithDB(db, "sqlite3", wlog)
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := container.Upgrade(ctx); err != nil {
		db.Close()
		return fmt.Errorf("preparing device store: %w", err)
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		db.Close()
		return fmt.Errorf("reading device store: %w", err)
	}
	s.gen++
	gen := s.gen
	cli := whatsmeow.NewClient(dev, wlog.Sub("client"))
	cli.EnableAutoReconnect = true
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	cli.AutoReconnectHook = s.reconnectHook(gen, cli)
	if err := s.m.connector.Prepare(cli); err != nil {
		db.Close()
		return err
	}
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		if m, ok := evt.(*events.Message); ok {
			return s.handleMessage(gen, m)
		}
		if interesting(evt) {
			s.post(gen, evt)
		}
		return true
	})
	s.client = &client{gen: gen, cli: cli, db: db, container: container}
	s.currentMu.Lock()
	s.current, s.currentGen, s.currentPipe = cli, gen, s.pipe
	s.currentMu.Unlock()
	return nil
}

func interesting(evt any) bool {
	switch evt.(type) {
	case *events.QR, *events.PairSuccess, *events.PairError, *events.Connected, *events.Disconnected,
		*events.LoggedOut, *events.StreamReplaced, *events.ClientOutdated, *events.TemporaryBan,
		*events.ConnectFailure, *events.PushNameSetting, *events.KeepAliveTimeout, *events.KeepAliveRestored,
		*events.StreamError:
		return true
	}
	return false
}

// handleMessage runs on whatsmeow's goroutine: the pipeline stores the
// message before whatsmeow acknowledges it.
func (s *supervisor) handleMessage(gen int, m *events.Message) bool {
	pipe := s.pipeFor(gen)
	if pipe == nil {
		return false // not ours any more: let WhatsApp deliver it again
	}
	return pipe.HandleMessage(m)
}

func (s *supervisor) pipeFor(gen int) TenantPipeline {
	s.currentMu.RLock()
	defer s.currentMu.RUnlock()
	if s.current == nil || s.currentGen != gen {
		return nil
	}
	return s.currentPipe
}

// reconnectHook counts whatsmeow's failed reconnects. It gives up after
// the configured maximum, and otherwise waits a capped, jittered
// exponential backoff in place of whatsmeow's growing linear delay.
func (s *supervisor) reconnectHook(gen int, cli *whatsmeow.Client) func(error) bool {
	return func(err error) bool {
		n := int(s.attempts.Add(1))
		s.post(gen, reconnectFailed{attempts: n, err: err})
		if n >= s.m.cfg.ReconnectMaxAttempts {
			return false
		}
		select {
		case <-time.After(s.backoff(n)):
		case <-s.ctx.Done():
			return false
		}
		cli.AutoReconnectErrors = 0
		return true
	}
}

func (s *supervisor) backoff(attempt int) time.Duration {
	return Backoff(s.m.cfg.ReconnectBaseDelay, s.m.cfg.ReconnectMaxDelay, attempt)
}

// connect dials in the background, at most ConnectConcurrency tenants at
// a time, and posts the result.
func (s *supervisor) connect() {
	c := s.client
	if c == nil {
		return
	}
	go func() {
		select {
		case s.m.connectSem <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		// whatsmeow ties the connection's goroutines to this context. It
		// must outlive the supervisor's: teardown disconnects first, and a
		// context cancelled under a live socket makes whatsmeow's reader
		// race with Disconnect.
		err := c.cli.ConnectContext(context.WithoutCancel(s.ctx))
		<-s.m.connectSem
		if errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			err = nil
		}
		s.post(c.gen, connectResult{err: err})
	}()
}

// teardown disconnects and closes the current client.
func (s *supervisor) teardown() {
	s.stopTimers()
	c := s.client
	s.client = nil
	s.currentMu.Lock()
	s.current, s.currentGen, s.currentPipe = nil, 0, nil
	s.currentMu.Unlock()
	if s.pipe != nil {
		s.pipe.Online(false)
	}
	if c != nil {
		c.cli.Disconnect()
		c.cli.RemoveEventHandlers()
		c.container.Close()
		c.db.Close()
	}
}

func (s *supervisor) stopTimers() {
	if s.qrTimer != nil {
		s.qrTimer.Stop()
		s.qrTimer = nil
	}
	if s.retryTimer != nil {
		s.retryTimer.Stop()
		s.retryTimer = nil
	}
	s.qrCodes = nil
}

func (s *supervisor) handleCommand(c command) {
	var r cmdResult
	switch c.kind {
	case cmdLink:
		r.err = s.link()
	case cmdLinkPhone:
		if err := s.link(); err != nil {
			r.err = err
			break
		}
		phone, err := normalizePhone(c.phone)
		if err != nil {
			r.err = err
			break
		}
		c.phone = phone
		s.phoneWaiting = append(s.phoneWaiting, c)
		if len(s.qrCodes) > 0 {
			s.startPhonePairing()
		}
		return // answered when the code arrives
	case cmdRestart:
		s.worker.Restarts++
		s.teardown()
		s.attempts.Store(0)
		s.sess.ErrorCode, s.sess.LastError, s.sess.ReconnectAttempts = "", "", 0
		s.saveSession()
		s.start()
		s.saveWorker(tenant.WorkerRunning)
	case cmdReset:
		r.err = s.reset()
	case cmdLogout:
		if c := s.client; c != nil && c.cli.Store.ID != nil && c.cli.IsLoggedIn() {
			ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
			if err := c.cli.Logout(ctx); err != nil {
				s.log.Warn("unlinking from WhatsApp failed; resetting anyway", "err", err)
			}
			cancel()
		}
		r.err = s.reset()
	}
	c.reply <- r
}

// link starts a link attempt unless one is running or the tenant is
// linked.
func (s *supervisor) link() error {
	if s.client == nil {
		if err := s.openClient(); err != nil {
			s.fail(CodeStoreFailed, storeFailedText(err))
			return &tenant.Error{Code: tenant.CodeUnavailable, Msg: "the device store cannot be opened; see the session's error"}
		}
	}
	if s.client.cli.Store.ID != nil {
		switch s.sess.State {
		case tenant.StateConnected, tenant.StateDisconnected:
			return nil // already linked
		}
		return tenant.Errorf(tenant.CodeConflict, "this workspace has a linked device; press Restart to reconnect it, or Reset to link a new one")
	}
	if s.client.cli.IsConnected() && (s.sess.State == tenant.StateQRPending || s.sess.State == tenant.StateQRReady) {
		return nil // a link attempt is running
	}
	s.beginLink()
	return nil
}

func (s *supervisor) beginLink() {
	s.stopTimers()
	s.clearQR()
	s.sess.State = tenant.StateQRPending
	s.sess.ErrorCode, s.sess.LastError, s.sess.PairCode = "", "", ""
	s.saveSession()
	s.connect()
}

// reset deletes the device store and starts over with a new QR code.
func (s *supervisor) reset() error {
	s.teardown()
	if err := removeDir(s.dir); err != nil {
		s.fail(CodeStoreFailed, storeFailedText(err))
		return err
	}
	s.attempts.Store(0)
	s.resetRow()
	if err := s.openClient(); err != nil {
		s.fail(CodeStoreFailed, storeFailedText(err))
		return err
	}
	s.beginLink()
	return nil
}

func (s *supervisor) resetRow() {
	s.sess = tenant.Session{TenantID: s.id, State: tenant.StateQRPending, Reconnects: s.sess.Reconnects}
	s.saveSession()
}

func (s *supervisor) clearQR() {
	s.sess.QRCode, s.sess.QRDataURI = "", ""
	s.sess.QRUpdatedAt, s.sess.QRExpiresAt = time.Time{}, time.Time{}
}

// showNextQR stores the next code for the portal, or ends the attempt when
// the codes ran out: nothing keeps connecting until a new attempt.
func (s *supervisor) showNextQR() {
	if len(s.qrCodes) == 0 {
		s.log.Info("QR codes ran out before a scan")
		if c := s.client; c != nil {
			c.cli.Disconnect()
		}
		s.clearQR()
		s.sess.PairCode = ""
		s.sess.State = tenant.StateQRExpired
		s.saveSession()
		s.answerPhone("", tenant.Errorf(tenant.CodeConflict, "the link attempt expired; start a new one"))
		return
	}
	code := s.qrCodes[0]
	s.qrCodes = s.qrCodes[1:]
	timeout := s.m.cfg.QRNextTimeout
	if s.qrShown == 0 {
		timeout = s.m.cfg.QRFirstTimeout
	}
	s.qrShown++
	uri, err := RenderQR(code)
	if err != nil {
		s.log.Error("cannot render QR code", "err", err)
	}
	now := time.Now()
	s.sess.State = tenant.StateQRReady
	s.sess.QRCode, s.sess.QRDataURI = code, uri
	s.sess.QRUpdatedAt, s.sess.QRExpiresAt = now, now.Add(timeout)
	s.saveSession()
	s.qrTimer = time.NewTimer(timeout)
}

func (s *supervisor) handleEvent(ce clientEvent) {
	if s.client == nil || ce.gen != s.client.gen {
		return // from a client that was replaced
	}
	cli := s.client.cli
	switch e := ce.evt.(type) {
	case connectResult:
		if e.err == nil {
			return
		}
		if cli.Store.ID == nil {
			s.fail(CodeConnectFailure, fmt.Sprintf("wabot could not reach WhatsApp to get a QR code (%v). Check the server's internet connection and press \"Get a new code\".", e.err))
			return
		}
		s.connectFailed(int(s.attempts.Add(1)), e.err, true)
	case reconnectFailed:
		s.connectFailed(e.attempts, e.err, false)
	case *events.QR:
		s.qrCodes = e.Codes
		s.qrShown = 0
		s.showNextQR()
		s.startPhonePairing()
	case *events.PairSuccess:
		s.log.Info("device linked", "jid", e.ID.String(), "platform", e.Platform)
		if s.qrTimer != nil {
			s.qrTimer.Stop()
			s.qrTimer = nil
		}
		s.qrCodes = nil
		s.sess.JID = e.ID.String()
		s.saveSession()
	case *events.PairError:
		s.log.Warn("linking failed", "err", e.Error)
		cli.Disconnect()
		s.fail(CodePairFailed, pairFailedText(e.Error))
	case *events.Connected:
		s.attempts.Store(0)
		s.stopTimers()
		s.clearQR()
		s.sess.State = tenant.StateConnected
		s.sess.PairCode, s.sess.ErrorCode, s.sess.LastError = "", "", ""
		s.sess.ReconnectAttempts = 0
		if cli.Store.ID != nil {
			s.sess.JID = cli.Store.ID.ToNonAD().String()
		}
		if cli.Store.PushName != "" {
			s.sess.PushName = cli.Store.PushName
		}
		s.sess.ConnectedAt = time.Now()
		s.saveSession()
		s.log.Info("connected", "jid", s.sess.JID)
		if _, err := s.m.store.TransitionTenantStatus(s.ctx, s.id, tenant.StatusError, tenant.StatusActive); err != nil {
			s.log.Warn("cannot restore tenant status", "err", err)
		}
		s.pipe.Online(true)
	case *events.Disconnected:
		s.pipe.Online(false)
		if cli.Store.ID == nil {
			// The link attempt's socket dropped: whatsmeow does not
			// reconnect an unlinked client, so the codes are gone.
			s.stopTimers()
			s.clearQR()
			s.sess.State = tenant.StateQRExpired
			s.sess.LastError = "The connection to WhatsApp dropped while waiting for the scan. Press \"Get a new code\"."
			s.saveSession()
			s.answerPhone("", tenant.Errorf(tenant.CodeConflict, "the link attempt was interrupted; start a new one"))
			return
		}
		s.sess.State = tenant.StateDisconnected
		s.sess.Reconnects++
		s.m.cfg.Observer.Reconnect()
		s.saveSession()
		s.log.Info("disconnected; reconnecting")
	case *events.PushNameSetting:
		if n := e.Action.GetName(); n != "" {
			s.sess.PushName = n
			s.saveSession()
		}
	case *events.LoggedOut:
		s.log.Warn("logged out by WhatsApp", "on_connect", e.OnConnect, "reason", e.Reason.String())
		s.teardown()
		if err := removeDir(s.dir); err != nil {
			s.log.Error("cannot remove device store", "err", err)
		}
		s.sess = tenant.Session{TenantID: s.id, State: tenant.StateLoggedOut, ErrorCode: CodeLoggedOut, LastError: loggedOutText, Reconnects: s.sess.Reconnects}
		s.saveSession()
	// After these whatsmeow does not reconnect, and waits for the server to
	// close the socket; closing it here frees it at once.
	case *events.StreamReplaced:
		cli.Disconnect()
		s.fail(CodeReplaced, replacedText)
	case *events.ClientOutdated:
		cli.Disconnect()
		s.fail(CodeOutdated, outdatedText)
	case *events.TemporaryBan:
		cli.Disconnect()
		s.fail(CodeTemporaryBan, banText(e))
	case *events.ConnectFailure:
		cli.Disconnect()
		s.fail(CodeConnectFailure, connectFailureText(e))
	case *events.KeepAliveTimeout:
		s.log.Debug("keepalive timed out", "errors", e.ErrorCount)
	case *events.KeepAliveRestored:
		s.log.Debug("keepalive restored")
	case *events.StreamError:
		s.log.Warn("unknown stream error from WhatsApp", "code", e.Code)
	case phoneCodeResult:
		if e.err == nil {
			s.sess.PairCode = e.code
			s.saveSession()
		}
		e.cmd.reply <- cmdResult{code: e.code, err: e.err}
	}
}

// connectFailed counts a failed (re)connect; past the maximum the session
// goes to ERROR. Before it, whatsmeow's reconnect loop retries by itself;
// retryOwn schedules a retry for a connect of ours that failed.
func (s *supervisor) connectFailed(attempts int, err error, retryOwn bool) {
	s.sess.ReconnectAttempts = attempts
	s.sess.LastError = err.Error()
	if attempts >= s.m.cfg.ReconnectMaxAttempts {
		s.log.Error("giving up reconnecting", "attempts", attempts, "err", err)
		if c := s.client; c != nil {
			c.cli.Disconnect()
		}
		s.fail(CodeReconnectFailed, reconnectFailedText(attempts, err))
		return
	}
	s.log.Warn("reconnect failed", "attempt", attempts, "err", err)
	s.sess.State = tenant.StateDisconnected
	s.saveSession()
	if retryOwn && s.retryTimer == nil {
		s.retryTimer = time.NewTimer(s.backoff(attempts))
	}
}

// fail puts the session in ERROR with a stable code and a sentence a
// person can act on; an ACTIVE tenant turns ERROR until it reconnects.
func (s *supervisor) fail(code, text string) {
	s.stopTimers()
	if s.pipe != nil {
		s.pipe.Online(false)
	}
	s.clearQR()
	if _, err := s.m.store.TransitionTenantStatus(s.ctx, s.id, tenant.StatusActive, tenant.StatusError); err != nil {
		s.log.Warn("cannot mark tenant failed", "err", err)
	}
	s.sess.State = tenant.StateError
	s.sess.ErrorCode, s.sess.LastError = code, text
	s.saveSession()
	s.log.Warn("session failed", "code", code, "error", text)
	s.answerPhone("", tenant.Errorf(tenant.CodeConflict, "the link attempt failed: %s", text))
}

// startPhonePairing asks whatsmeow for a pairing code for each waiting
// request, once the link websocket is up (a QR code has arrived).
func (s *supervisor) startPhonePairing() {
	if len(s.phoneWaiting) == 0 || s.client == nil {
		return
	}
	waiting := s.phoneWaiting
	s.phoneWaiting = nil
	c := s.client
	for _, cmd := range waiting {
		go func() {
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			defer cancel()
			code, err := c.cli.PairPhone(ctx, cmd.phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
			if err != nil {
				err = tenant.Errorf(tenant.CodeInvalid, "WhatsApp refused to pair %s: %v", cmd.phone, err)
			}
			s.post(c.gen, phoneCodeResult{cmd: cmd, code: code, err: err})
		}()
	}
}

func (s *supervisor) answerPhone(code string, err error) {
	for _, c := range s.phoneWaiting {
		c.reply <- cmdResult{code: code, err: err}
	}
	s.phoneWaiting = nil
}

var phonePattern = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)

// normalizePhone accepts an international number with or without "+",
// spaces, dashes, dots and brackets.
func normalizePhone(p string) (string, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, strings.TrimSpace(p))
	if !phonePattern.MatchString(clean) {
		return "", &tenant.Error{Code: tenant.CodeInvalid, Msg: "enter the phone number in international format, such as +15551234567",
			Fields: map[string]string{"phone": "Use international format with the country code, such as +15551234567."}}
	}
	return "+" + strings.TrimPrefix(clean, "+"), nil
}

func (s *supervisor) saveSession() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	s.sess.TenantID = s.id
	if err := s.m.store.SaveSession(ctx, s.sess); err != nil {
		s.sessDirty = true
		s.log.Error("cannot save session row; retrying at the next heartbeat", "err", err)
		return
	}
	s.sessDirty = false
}

func (s *supervisor) saveWorker(status tenant.WorkerStatus) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	s.worker.TenantID = s.id
	s.worker.Status = status
	s.worker.LastSeenAt = time.Now()
	if err := s.m.store.SaveWorker(ctx, s.worker); err != nil {
		s.log.Error("cannot save worker row; retrying at the next heartbeat", "err", err)
	}
}

// Sender, for the pipeline.

// ErrOffline means the tenant's client is not logged in right now.
var ErrOffline = errors.New("the WhatsApp session is not connected")

func (s *supervisor) client0() *whatsmeow.Client {
	s.currentMu.RLock()
	defer s.currentMu.RUnlock()
	return s.current
}

// SendText sends a text message with a fixed id.
func (s *supervisor) SendText(ctx context.Context, chat types.JID, id, text string) error {
	cli := s.client0()
	if cli == nil || !cli.IsLoggedIn() {
		return ErrOffline
	}
	_, err := cli.SendMessage(ctx, chat, &waE2E.Message{Conversation: &text}, whatsmeow.SendRequestExtra{ID: id, Timeout: 30 * time.Second})
	return err
}

// NewMessageID returns an id in WhatsApp's format.
func (s *supervisor) NewMessageID() string {
	if cli := s.client0(); cli != nil {
		return cli.GenerateMessageID()
	}
	return whatsmeow.GenerateMessageID()
}

// OwnJID is the linked number.
func (s *supervisor) OwnJID() types.JID {
	if cli := s.client0(); cli != nil && cli.Store.ID != nil {
		return cli.Store.ID.ToNonAD()
	}
	return types.EmptyJID
}
