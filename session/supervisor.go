package session

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"

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
	connectResult struct{ err error }
	// redeliver: a message was left unacknowledged (the pipeline could
	// not store it, or panicked); only a new connection makes WhatsApp
	// deliver it again.
	redeliver struct {
		why     string
		crashed bool // a panic: counted as a restart of the tenant
	}
	phoneCodeResult struct {
		cmd  command
		code string
		err  error
	}
)

// supervisor owns one tenant's whatsmeow client. Its loop goroutine is the
// only writer of the tenant's session and worker rows; whatsmeow's
// handlers post events to it and never wait on it for long.
type supervisor struct {
	m     *Manager
	id    string
	epoch int64 // of the lease it runs under; its ctx carries the fence
	// quiet: its lease is gone or going; stopping, it writes nothing more.
	quiet atomic.Bool
	// signalMu keeps a send and a decryption of this tenant's device from
	// running at once (signal.go), across client generations.
	signalMu sync.Mutex
	log      *slog.Logger
	dir      string
	ctx      context.Context
	cancel   context.CancelFunc
	cmds     chan command
	events   chan clientEvent
	done     chan struct{}

	// Owned by the loop goroutine.
	sess         tenant.Link
	worker       tenant.Worker
	client       *client
	gen          int
	qrCodes      []string
	qrShown      int
	qrTimer      *time.Timer
	retryTimer   *time.Timer
	phoneWaiting []command // phone pairing requests waiting for the link socket
	phoneAsked   []command // phone pairing requests whatsmeow is asking WhatsApp for
	pipe         TenantPipeline

	// The supervisor drives every reconnect itself (whatsmeow's own is
	// off): dialing while a connect of ours runs; loggedIn once the
	// current connection logged in (a drop before that is a failed
	// attempt: WhatsApp refused the login); keepaliveLost while pings go
	// unanswered.
	dialing        bool
	loggedIn       bool
	keepaliveLost  bool
	socketUp       bool // our last dial succeeded and no drop was seen since
	retryAfterDial int  // a drop seen while dialing: the attempt to retry with
	idleHeartbeats int  // in a row with a linked client offline and nothing reconnecting it

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

func newSupervisor(m *Manager, id string, epoch int64) *supervisor {
	ctx, cancel := context.WithCancel(tenant.WithFence(m.ctx, id, m.cfg.InstanceID, epoch))
	return &supervisor{
		m: m, id: id, epoch: epoch, log: m.log.With("tenant", id), dir: m.dir(id),
		ctx: ctx, cancel: cancel,
		cmds:   make(chan command),
		events: make(chan clientEvent, 64),
		done:   make(chan struct{}),
	}
}

// do sends a command to the loop and waits for its answer.
func (s *supervisor) do(ctx context.Context, cmd command) (string, error) {
	cmd.reply = make(chan cmdResult, 1)
	select {
	case s.cmds <- cmd:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-s.done:
		return "", ErrNotRunning
	}
	select {
	case r := <-cmd.reply:
		return r.code, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	case <-s.done:
		return "", ErrNotRunning
	}
}

// post hands an event of client c to the loop from another goroutine.
// Once c is torn down the event is dropped instead of waited on: the loop
// would drop it anyway, and teardown, on the loop, may be waiting for the
// poster.
func (s *supervisor) post(c *client, evt any) {
	select {
	case s.events <- clientEvent{gen: c.gen, evt: evt}:
	case <-c.ctx.Done():
	}
}

// recovered logs a panic in one of the supervisor's goroutines and turns
// it into an error, so a bug there fails one attempt instead of the
// process.
func (s *supervisor) recovered(what string, r any) error {
	s.log.Error(what+" panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return fmt.Errorf("%s panicked: %v", what, r)
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
	sess, err := s.m.store.LinkOf(s.ctx, s.id)
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
		case cmd := <-s.cmds:
			s.handleCommand(cmd)
		case e := <-s.events:
			s.handleEvent(e)
		case <-heartbeat.C:
			s.checkConnection()
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
		s.fail(tenant.ProblemStoreFailed, storeFailedText(err))
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

func (s *supervisor) handleCommand(cmd command) {
	var r cmdResult
	switch cmd.kind {
	case cmdLink:
		r.err = s.link()
	case cmdLinkPhone:
		if r.err = s.linkPhone(cmd); r.err == nil {
			return // answered when the code arrives
		}
	case cmdRestart:
		s.restart()
	case cmdReset:
		r.err = s.reset()
	case cmdLogout:
		r.err = s.logout()
	}
	cmd.reply <- r
}

// restart starts a new client generation over the same device store,
// forgetting the failures counted so far.
func (s *supervisor) restart() {
	s.worker.Restarts++
	s.teardown()
	s.attempts.Store(0)
	s.sess.ErrorCode, s.sess.LastError, s.sess.ReconnectAttempts = "", "", 0
	if s.sess.State == tenant.StateConnected || s.sess.State == tenant.StateError {
		s.sess.State = tenant.StateDisconnected // until it is connected again
	}
	s.saveSession()
	s.start()
	s.saveWorker(tenant.WorkerRunning)
}

// fail puts the session in ERROR with a stable code and a sentence a
// person can act on; an ACTIVE tenant turns ERROR until it reconnects.
func (s *supervisor) fail(code tenant.Problem, text string) {
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

// saveSession writes the session row, then tells the tenant's subscribers,
// so what they re-read is the new row.
func (s *supervisor) saveSession() {
	if s.quiet.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	s.sess.TenantID = s.id
	if err := s.m.store.SaveLink(ctx, s.sess); err != nil {
		s.sessDirty = true
		s.log.Error("cannot save session row; retrying at the next heartbeat", "err", err)
		return
	}
	s.sessDirty = false
	s.m.subscribers.notify(s.id)
}

func (s *supervisor) saveWorker(status tenant.WorkerStatus) {
	if s.quiet.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	s.worker.TenantID = s.id
	s.worker.Status = status
	s.worker.LastSeenAt = time.Now()
	if err := s.m.store.SaveWorker(ctx, s.worker); err != nil {
		s.log.Error("cannot save worker row; retrying at the next heartbeat", "err", err)
		return
	}
	s.m.subscribers.notify(s.id)
}
