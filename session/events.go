package session

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"wabot/tenant"
)

// eventHandler is what whatsmeow calls, on its own goroutines, for every
// event of client generation c. Messages go straight to the pipeline; the
// events the supervisor acts on are posted to its loop.
func (s *supervisor) eventHandler(c *client) func(evt any) bool {
	return func(evt any) bool {
		if m, ok := evt.(*events.Message); ok {
			return s.handleMessage(c, m)
		}
		if r, ok := evt.(*events.Receipt); ok {
			if h, ok := s.pipeFor(c.gen).(ReceiptHandler); ok {
				h.HandleReceipt(r)
			}
			return true
		}
		if interesting(evt) {
			s.post(c, evt)
		}
		return true
	}
}

func interesting(evt any) bool {
	switch evt.(type) {
	case *events.QR, *events.PairSuccess, *events.PairError, *events.Connected, *events.Disconnected,
		*events.LoggedOut, *events.StreamReplaced, *events.ClientOutdated, *events.TemporaryBan,
		*events.ConnectFailure, *events.PushNameSetting, *events.KeepAliveTimeout, *events.KeepAliveRestored,
		*events.StreamError, *events.ManualLoginReconnect:
		return true
	}
	return false
}

// handleMessage runs on whatsmeow's goroutine: the pipeline stores the
// message before whatsmeow acknowledges it. A panic there would be
// swallowed by whatsmeow, which would then acknowledge a message nobody
// stored: it is caught here, the message is left unacknowledged, and the
// client is restarted so WhatsApp delivers it again.
func (s *supervisor) handleMessage(c *client, m *events.Message) (handled bool) {
	defer func() {
		if r := recover(); r != nil {
			s.recovered("handling a message", r)
			handled = false
			s.post(c, redeliver{why: "the message pipeline panicked", crashed: true})
		}
	}()
	pipe := s.pipeFor(c.gen)
	if pipe == nil {
		return false // not ours any more: let WhatsApp deliver it again
	}
	if !pipe.HandleMessage(m) {
		s.post(c, redeliver{why: "an incoming message could not be stored"})
		return false
	}
	return true
}

func (s *supervisor) pipeFor(gen int) TenantPipeline {
	s.currentMu.RLock()
	defer s.currentMu.RUnlock()
	if s.current == nil || s.currentGen != gen {
		return nil
	}
	return s.currentPipe
}

// handleEvent runs on the loop and hands each event of the current client
// to its handler, which may then use s.client.
func (s *supervisor) handleEvent(ce clientEvent) {
	if s.client == nil || ce.gen != s.client.gen {
		return // from a client that was replaced
	}
	switch e := ce.evt.(type) {
	case connectResult:
		s.onConnectResult(e)
	case redeliver:
		s.onRedeliver(e)
	case *events.ManualLoginReconnect:
		s.onRestartStream()
	case phoneCodeResult:
		s.onPhoneCode(e)
	case *events.QR:
		s.onQR(e)
	case *events.PairSuccess:
		s.onPairSuccess(e)
	case *events.PairError:
		s.onPairError(e)
	case *events.Connected:
		s.onConnected()
	case *events.Disconnected:
		s.onDisconnected()
	case *events.PushNameSetting:
		s.onPushName(e)
	case *events.LoggedOut:
		s.onLoggedOut(e)
	case *events.StreamReplaced:
		s.disconnectAndFail(tenant.ProblemReplaced, replacedText)
	case *events.ClientOutdated:
		s.disconnectAndFail(tenant.ProblemOutdated, outdatedText)
	case *events.TemporaryBan:
		s.disconnectAndFail(tenant.ProblemTemporaryBan, banText(e))
	case *events.ConnectFailure:
		s.disconnectAndFail(tenant.ProblemConnectFailure, connectFailureText(e))
	case *events.KeepAliveTimeout:
		s.onKeepAliveTimeout(e)
	case *events.KeepAliveRestored:
		s.onKeepAliveRestored()
	case *events.StreamError:
		s.log.Warn("unknown stream error from WhatsApp", "code", e.Code)
	}
}

// onConnectResult: a connect of ours failed. Without a link there is no
// QR code to wait for; with one, it counts as a failed reconnect.
func (s *supervisor) onConnectResult(e connectResult) {
	s.dialing = false
	s.socketUp = e.err == nil
	retry := s.retryAfterDial
	s.retryAfterDial = 0
	if e.err == nil {
		if retry > 0 && !s.loggedIn {
			// A drop was seen while dialing and nothing logged in since.
			s.socketUp = false
			s.scheduleReconnect(retry)
		}
		return
	}
	if s.client.cli.Store.ID == nil {
		s.fail(tenant.ProblemConnectFailure, fmt.Sprintf("wabot could not reach WhatsApp to get a QR code (%v). Check the server's internet connection and press \"Get a new code\".", e.err))
		return
	}
	s.connectFailed(int(s.attempts.Add(1)), e.err, true)
}

func (s *supervisor) onQR(e *events.QR) {
	s.qrCodes = e.Codes
	s.qrShown = 0
	s.showNextQR()
	s.startPhonePairing()
}

func (s *supervisor) onPhoneCode(e phoneCodeResult) {
	s.phoneAsked = slices.DeleteFunc(s.phoneAsked, func(c command) bool { return c.reply == e.cmd.reply })
	if e.err == nil {
		s.sess.PairCode = e.code
		s.saveSession()
	}
	e.cmd.reply <- cmdResult{code: e.code, err: e.err}
}

func (s *supervisor) onPairSuccess(e *events.PairSuccess) {
	s.log.Info("device linked", "jid", e.ID.String(), "platform", e.Platform)
	if s.qrTimer != nil {
		s.qrTimer.Stop()
		s.qrTimer = nil
	}
	s.qrCodes = nil
	s.sess.JID = e.ID.String()
	if c := s.client; c != nil {
		s.lockDecryption(c.cli.Store) // pairing just gave the device its stores
		// In a shared device store this row is how the next start finds
		// the tenant's device; whatsmeow saved the device itself already.
		if err := s.m.cfg.Devices.Linked(s.ctx, s.id, c.cli.Store); err != nil {
			s.log.Error("cannot record the linked device; the next start will need a new QR code", "err", err)
		}
	}
	s.saveSession()
}

func (s *supervisor) onPairError(e *events.PairError) {
	s.log.Warn("linking failed", "err", e.Error)
	s.disconnectAndFail(tenant.ProblemPairFailed, pairFailedText(e.Error))
}

func (s *supervisor) onConnected() {
	cli := s.client.cli
	if !cli.IsLoggedIn() {
		return // from a connection already gone: its drop is handled
	}
	s.attempts.Store(0)
	s.loggedIn, s.keepaliveLost = true, false
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
	// The tenant is ACTIVE again before the row says CONNECTED, so no one
	// reads a connected session of a failed tenant.
	if _, err := s.m.store.TransitionTenantStatus(s.ctx, s.id, tenant.StatusError, tenant.StatusActive); err != nil {
		s.log.Warn("cannot restore tenant status", "err", err)
	}
	s.saveSession()
	s.log.Info("connected", "jid", s.sess.JID)
	s.pipe.Online(true)
}

func (s *supervisor) onDisconnected() {
	s.pipe.Online(false)
	if s.client.cli.Store.ID == nil {
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
	s.reconnectAfterDrop("the connection to WhatsApp dropped")
}

// reconnectAfterDrop reconnects a linked client whose connection is gone.
// A connection that had logged in starts the count of attempts afresh; one
// that dropped before logging in (WhatsApp refused the login, or closed
// the socket at once) is a failed attempt, so an outage is capped like any
// other and no tenants retry in lockstep.
func (s *supervisor) reconnectAfterDrop(why string) {
	wasLoggedIn := s.loggedIn
	s.loggedIn, s.keepaliveLost, s.socketUp = false, false, false
	if wasLoggedIn {
		s.sess.Reconnects++
		s.m.cfg.Observer.Reconnect()
		s.log.Info("disconnected; reconnecting", "why", why)
		s.attempts.Store(0)
		s.sess.State = tenant.StateDisconnected
		s.saveSession()
		s.scheduleReconnect(1)
		return
	}
	s.connectFailed(int(s.attempts.Add(1)), errors.New(why+" before the login completed"), true)
}

// scheduleReconnect dials again after the backoff of attempt, unless a
// dial or a retry is already under way.
func (s *supervisor) scheduleReconnect(attempt int) {
	switch {
	case s.dialing:
		s.retryAfterDial = attempt // the drop may be the dialed socket's: retry when the dial answers
	case s.retryTimer == nil:
		s.retryTimer = time.NewTimer(s.backoff(attempt))
	}
}

// onRestartStream: WhatsApp's 515 asks the client to connect again (right
// after pairing, and sometimes mid-session). whatsmeow's own single try is
// off: a failure there went unnoticed and left the tenant offline.
func (s *supervisor) onRestartStream() {
	s.log.Info("WhatsApp asked to restart the stream; reconnecting")
	s.pipe.Online(false)
	s.client.cli.Disconnect()
	s.dialing, s.socketUp = false, false
	if s.loggedIn {
		s.loggedIn = false
		s.sess.State = tenant.StateDisconnected
		s.saveSession()
	}
	s.attempts.Store(0)
	s.connect()
}

// onKeepAliveTimeout: pings go unanswered. Replies wait from the first
// miss; past whatsmeow's KeepAliveMaxFailTime the connection is taken for
// dead and replaced (a silent network drop emits nothing else).
func (s *supervisor) onKeepAliveTimeout(e *events.KeepAliveTimeout) {
	s.log.Debug("keepalive timed out", "errors", e.ErrorCount)
	s.keepaliveLost = true
	s.pipe.Online(false)
	if time.Since(e.LastSuccess) > whatsmeow.KeepAliveMaxFailTime && s.sess.JID != "" {
		s.log.Warn("no keepalive answered for too long; reconnecting", "last_success", e.LastSuccess)
		s.client.cli.Disconnect()
		s.dialing = false
		s.reconnectAfterDrop("keepalives went unanswered")
	}
}

func (s *supervisor) onKeepAliveRestored() {
	s.log.Debug("keepalive restored")
	if s.keepaliveLost && s.client.cli.IsLoggedIn() {
		s.keepaliveLost = false
		s.pipe.Online(true)
	}
}

// onRedeliver: a message was left unacknowledged (the pipeline could not
// store it, or panicked). A new connection makes WhatsApp deliver it
// again, after a backoff so a database that stays down is not hammered.
func (s *supervisor) onRedeliver(e redeliver) {
	if e.crashed {
		s.worker.Restarts++
		s.saveWorker(tenant.WorkerRunning)
	}
	if s.dialing || s.retryTimer != nil {
		return // a new connection is on its way
	}
	s.log.Warn("reconnecting so WhatsApp delivers a message again", "why", e.why)
	s.pipe.Online(false)
	s.client.cli.Disconnect()
	s.loggedIn, s.keepaliveLost, s.socketUp = false, false, false
	s.sess.State = tenant.StateDisconnected
	s.saveSession()
	s.scheduleReconnect(1)
}

// checkConnection, at each heartbeat, catches a linked client whose
// socket is gone for two heartbeats in a row while nothing is reconnecting
// it, whatever path led there. A socket that is up but slow to log in is
// left alone. It reads the supervisor's own record of the connection:
// whatsmeow's IsConnected races with its socket closing.
func (s *supervisor) checkConnection() {
	idle := s.client != nil && s.sess.JID != "" && !s.socketUp && !s.loggedIn && !s.dialing && s.retryTimer == nil &&
		s.sess.State != tenant.StateError && s.sess.State != tenant.StateLoggedOut
	if !idle {
		s.idleHeartbeats = 0
		return
	}
	if s.idleHeartbeats++; s.idleHeartbeats < 2 {
		return
	}
	s.idleHeartbeats = 0
	s.log.Warn("the client is not logged in and nothing is reconnecting it; reconnecting")
	s.pipe.Online(false)
	s.reconnectAfterDrop("the connection was lost")
}

func (s *supervisor) onPushName(e *events.PushNameSetting) {
	if n := e.Action.GetName(); n != "" {
		s.sess.PushName = n
		s.saveSession()
	}
}

// onLoggedOut: WhatsApp unlinked the device, so its keys are useless; the
// store goes and the tenant waits for a new link attempt.
func (s *supervisor) onLoggedOut(e *events.LoggedOut) {
	s.log.Warn("logged out by WhatsApp", "on_connect", e.OnConnect, "reason", e.Reason.String())
	s.teardown()
	s.forgetOpenMessages("not answered: the phone unlinked this device")
	if err := s.m.cfg.Devices.Remove(s.ctx, s.id, s.dir); err != nil {
		s.log.Error("cannot remove device store", "err", err)
	}
	s.sess = tenant.Link{TenantID: s.id, State: tenant.StateLoggedOut, ErrorCode: tenant.ProblemLoggedOut, LastError: loggedOutText, Reconnects: s.sess.Reconnects}
	s.saveSession()
}

// disconnectAndFail ends the session on an event after which whatsmeow
// does not reconnect and waits for the server to close the socket;
// closing it here frees it at once.
func (s *supervisor) disconnectAndFail(code tenant.Problem, text string) {
	s.client.cli.Disconnect()
	s.fail(code, text)
}

// connectFailed counts a failed (re)connect; past the maximum the session
// goes to ERROR, before it a retry is scheduled with backoff.
func (s *supervisor) connectFailed(attempts int, err error, retry bool) {
	s.pipe.Online(false)
	s.sess.ReconnectAttempts = attempts
	s.sess.LastError = err.Error()
	if attempts >= s.m.cfg.ReconnectMaxAttempts {
		s.log.Error("giving up reconnecting", "attempts", attempts, "err", err)
		if c := s.client; c != nil {
			c.cli.Disconnect()
		}
		s.fail(tenant.ProblemReconnectFailed, reconnectFailedText(attempts, err))
		return
	}
	s.log.Warn("reconnect failed", "attempt", attempts, "err", err)
	s.sess.State = tenant.StateDisconnected
	s.saveSession()
	if retry {
		s.scheduleReconnect(attempts)
	}
}
