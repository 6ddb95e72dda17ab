package session

import (
	"context"
	"regexp"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"

	"wabot/tenant"
)

// link starts a link attempt unless one is running or the tenant is
// linked.
func (s *supervisor) link() error {
	if s.client == nil {
		if err := s.openClient(); err != nil {
			s.fail(tenant.ProblemStoreFailed, storeFailedText(err))
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

// linkPhone starts a link attempt and queues cmd for a pairing code,
// which is asked for once the link websocket is up; an error means cmd is
// answered now.
func (s *supervisor) linkPhone(cmd command) error {
	if err := s.link(); err != nil {
		return err
	}
	phone, err := normalizePhone(cmd.phone)
	if err != nil {
		return err
	}
	cmd.phone = phone
	s.phoneWaiting = append(s.phoneWaiting, cmd)
	if len(s.qrCodes) > 0 {
		s.startPhonePairing()
	}
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
	s.forgetOpenMessages("not answered: the WhatsApp link was reset")
	if err := s.m.cfg.Devices.Remove(s.ctx, s.id, s.dir); err != nil {
		s.fail(tenant.ProblemStoreFailed, storeFailedText(err))
		return err
	}
	s.attempts.Store(0)
	s.resetRow()
	if err := s.openClient(); err != nil {
		s.fail(tenant.ProblemStoreFailed, storeFailedText(err))
		return err
	}
	s.beginLink()
	return nil
}

// logout unlinks the device from WhatsApp when it is online, then resets
// whether or not WhatsApp heard.
func (s *supervisor) logout() error {
	if c := s.client; c != nil && c.cli.Store.ID != nil && c.cli.IsLoggedIn() {
		ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
		if err := c.cli.Logout(ctx); err != nil {
			s.log.Warn("unlinking from WhatsApp failed; resetting anyway", "err", err)
		}
		cancel()
	}
	return s.reset()
}

// forgetOpenMessages closes what the unlinked number received and had
// not answered yet, and starts the pipeline afresh: the next number to
// link must not answer it.
func (s *supervisor) forgetOpenMessages(reason string) {
	if s.pipe != nil {
		s.pipe.Detach()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	n, err := s.m.store.AbandonOpen(ctx, s.id, reason)
	cancel()
	if err != nil {
		s.log.Error("cannot close the messages the old link left unanswered", "err", err)
	} else if n > 0 {
		s.log.Info("closed messages the old link left unanswered", "rows", n)
	}
	s.pipe = s.m.pipeline.Attach(s.id, s)
}

func (s *supervisor) resetRow() {
	s.sess = tenant.Link{TenantID: s.id, State: tenant.StateQRPending, Reconnects: s.sess.Reconnects}
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

// startPhonePairing asks whatsmeow for a pairing code for each waiting
// request, once the link websocket is up (a QR code has arrived).
func (s *supervisor) startPhonePairing() {
	if len(s.phoneWaiting) == 0 || s.client == nil {
		return
	}
	waiting := s.phoneWaiting
	s.phoneWaiting = nil
	s.phoneAsked = append(s.phoneAsked, waiting...)
	c := s.client
	for _, cmd := range waiting {
		c.tasks.Go(func() {
			code, err := s.requestPairingCode(c, cmd.phone)
			s.post(c, phoneCodeResult{cmd: cmd, code: code, err: err})
		})
	}
}

// requestPairingCode asks WhatsApp for the code to type on the phone. It
// ends with c, and a panic becomes an error for the one request.
func (s *supervisor) requestPairingCode(c *client, phone string) (code string, err error) {
	defer func() {
		if r := recover(); r != nil {
			code, err = "", s.recovered("requesting a pairing code", r)
		}
	}()
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	code, err = c.cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		err = tenant.Errorf(tenant.CodeInvalid, "WhatsApp refused to pair %s: %v", phone, err)
	}
	return code, err
}

// answerPhone answers every phone pairing request not answered yet.
func (s *supervisor) answerPhone(code string, err error) {
	for _, cmd := range append(s.phoneWaiting, s.phoneAsked...) {
		cmd.reply <- cmdResult{code: code, err: err}
	}
	s.phoneWaiting, s.phoneAsked = nil, nil
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
