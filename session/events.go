package session

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"wabot/tenant"
)

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
