//go:build fakewa

package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.mau.fi/whatsmeow/types"

	"wabot/portal"
	"wabot/session"
	"wabot/session/fakemodel"
	"wabot/session/fakewa"
	"wabot/tenant"
)

// demo is the fakewa build's in-process fake WhatsApp: every tenant's
// client connects to it, and /dev/fake routes play the phone and its
// contacts. Its state lives in memory: after a restart, linked tenants are
// logged out and link again.
type demo struct {
	srv    *fakewa.Server
	pprof  *http.Server   // the profiler, when WABOT_PPROF asks for it
	served chan struct{}  // closed when the profiler's server returns
	remote *fakewa.Remote // a fake in another process (benchmarks)
	log    *slog.Logger

	mu     sync.Mutex
	phones map[string]*fakewa.Phone // by tenant id
}

func startDemo(log *slog.Logger) (d *demo, err error) {
	// WABOT_PPROF serves Go's profiler on that loopback address (demo
	// build only), for the benchmark; close stops it.
	var pprof *http.Server
	served := make(chan struct{})
	if addr := os.Getenv("WABOT_PPROF"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("WABOT_PPROF: %w", err)
		}
		pprof = &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			defer close(served)
			pprof.Serve(ln) // ends when close shuts the server down
		}()
	}
	defer func() {
		if d != nil {
			d.pprof, d.served = pprof, served
		} else if pprof != nil {
			pprof.Close()
			<-served
		}
	}()
	// WABOT_FAKEWA_REMOTE names the info file of a standalone fake
	// (session/fakewa/cmd/fakewa): the benchmark keeps its memory apart.
	// It exists in the demo build only.
	if path := os.Getenv("WABOT_FAKEWA_REMOTE"); path != "" {
		r, err := fakewa.LoadRemote(path)
		if err != nil {
			return nil, err
		}
		log.Warn("demo build: tenants connect to a fake WhatsApp in another process", "info", path)
		return &demo{remote: r, log: log, phones: map[string]*fakewa.Phone{}}, nil
	}
	srv, err := fakewa.NewServer(fakewa.Options{})
	if err != nil {
		return nil, err
	}
	log.Warn("demo build: tenants connect to a fake WhatsApp server, not to WhatsApp", "fake_server", srv.Addr())
	return &demo{srv: srv, log: log, phones: map[string]*fakewa.Phone{}}, nil
}

func (d *demo) enabled() bool { return true }

// allowsLoopbackModels: the demo's fake model is served by wabot itself,
// on loopback.
func (d *demo) allowsLoopbackModels() bool { return true }

func (d *demo) connector() session.Connector {
	if d.remote != nil {
		return d.remote
	}
	return d.srv
}

func (d *demo) close() {
	if d.pprof != nil {
		d.pprof.Close()
		<-d.served
	}
	if d.srv != nil {
		d.srv.Close()
	}
}

func (d *demo) phone(tenantID string) *fakewa.Phone {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.phones[tenantID]
	if p == nil {
		p = d.srv.NewPhone("")
		d.phones[tenantID] = p
	}
	return p
}

// routes adds /dev/fake/tenants/{id}/ scan, messages, outbox, drop and
// unlink, with which a person or a test plays the tenant's phone and
// contacts; the fakewa build alone has them. Each needs an owner of the
// tenant or an admin, like the Link page.
func (d *demo) routes(e *echo.Echo, st *tenant.Store) {
	// A fake model with canned answers from the tenant's knowledge, for
	// AI answers without a provider account: base URL
	// <WABOT_BASE_URL>/dev/fake/model/v1, any model name and key.
	e.POST("/dev/fake/model/v1/chat/completions", echo.WrapHandler(fakemodel.New(nil)))
	if d.srv == nil {
		return // the remote fake has its own control API
	}
	g := e.Group("/dev/fake/tenants/:id", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u, ok := portal.CurrentUser(c)
			if !ok {
				return &tenant.Error{Code: tenant.CodeUnauthorized, Msg: "unauthorized"}
			}
			id := c.Param("id")
			if !tenant.ValidTenantID(id) {
				return echo.NewHTTPError(http.StatusNotFound)
			}
			// Playing the phone is linking: an owner's, like the Link page.
			if role, err := st.RoleOf(c.Request().Context(), id, u.ID); !u.IsAdmin && (err != nil || role != tenant.RoleOwner) {
				return echo.NewHTTPError(http.StatusNotFound)
			}
			if _, err := st.TenantByID(c.Request().Context(), id); err != nil {
				return err
			}
			return next(c)
		}
	})
	g.POST("/scan", func(c echo.Context) error {
		id := c.Param("id")
		s, err := st.LinkOf(c.Request().Context(), id)
		if err != nil {
			return err
		}
		if s.State != tenant.StateQRReady || s.QRCode == "" {
			return tenant.Errorf(tenant.CodeConflict, "there is no QR code to scan (state %s)", s.State)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), 20*time.Second)
		defer cancel()
		jid, err := d.phone(id).Scan(ctx, s.QRCode)
		if err != nil {
			return tenant.Errorf(tenant.CodeConflict, "the simulated phone could not scan: %v", err)
		}
		if strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
			return c.Redirect(http.StatusSeeOther, "/app/link")
		}
		return c.JSON(http.StatusOK, map[string]string{"jid": jid.String()})
	})
	g.POST("/messages", func(c echo.Context) error {
		var in struct {
			From string `json:"from"`
			Name string `json:"name"`
			Text string `json:"text"`
		}
		if err := c.Bind(&in); err != nil || strings.TrimSpace(in.Text) == "" {
			return &tenant.Error{Code: tenant.CodeInvalid, Msg: `send {"from":"+15550001111","name":"Ann","text":"hi"}`}
		}
		from := strings.TrimPrefix(strings.TrimSpace(in.From), "+")
		if from == "" {
			from = "15550001111"
		}
		id, err := d.phone(c.Param("id")).NewContact(from, in.Name).Send(in.Text)
		if err != nil {
			return tenant.Errorf(tenant.CodeConflict, "cannot deliver: %v", err)
		}
		return c.JSON(http.StatusAccepted, map[string]string{"id": id})
	})
	// media makes a contact send an attachment (base64 in the JSON, within
	// the portal's 1 MB request limit): a photo, voice note, document…
	g.POST("/media", func(c echo.Context) error {
		var in struct {
			From      string `json:"from"`
			Name      string `json:"name"`
			Kind      string `json:"kind"`
			Mime      string `json:"mime"`
			FileName  string `json:"file_name"`
			Caption   string `json:"caption"`
			Seconds   uint32 `json:"seconds"`
			VoiceNote bool   `json:"voice_note"`
			Data      []byte `json:"data"`
		}
		if err := c.Bind(&in); err != nil || len(in.Data) == 0 {
			return &tenant.Error{Code: tenant.CodeInvalid, Msg: `send {"from":"+15550001111","kind":"image","mime":"image/png","caption":"","data":"<base64>"}`}
		}
		from := strings.TrimPrefix(strings.TrimSpace(in.From), "+")
		if from == "" {
			from = "15550001111"
		}
		id, err := d.phone(c.Param("id")).NewContact(from, in.Name).SendMedia(fakewa.Media{
			Kind: fakewa.MediaKind(in.Kind), Data: in.Data, Mime: in.Mime, FileName: in.FileName,
			Caption: in.Caption, Seconds: in.Seconds, VoiceNote: in.VoiceNote,
		})
		if err != nil {
			return tenant.Errorf(tenant.CodeConflict, "cannot deliver: %v", err)
		}
		return c.JSON(http.StatusAccepted, map[string]string{"id": id})
	})
	// contacts makes a number known to WhatsApp without it writing first,
	// so the API can send to it (and IsOnWhatsApp says yes).
	g.POST("/contacts", func(c echo.Context) error {
		var in struct {
			Number string `json:"number"`
			Name   string `json:"name"`
		}
		if err := c.Bind(&in); err != nil || strings.Trim(in.Number, "+0123456789") != "" || len(strings.TrimPrefix(in.Number, "+")) < 6 {
			return &tenant.Error{Code: tenant.CodeInvalid, Msg: `send {"number":"+15550002222","name":"Bob"}`}
		}
		ct := d.phone(c.Param("id")).NewContact(strings.TrimPrefix(in.Number, "+"), in.Name)
		return c.JSON(http.StatusOK, map[string]string{"jid": ct.JID().String()})
	})
	// read makes a contact read what the tenant sent it (all of it, or the
	// WhatsApp ids given), which sends the tenant a read receipt.
	g.POST("/read", func(c echo.Context) error {
		var in struct {
			From string   `json:"from"`
			IDs  []string `json:"ids"`
		}
		if err := c.Bind(&in); err != nil {
			return &tenant.Error{Code: tenant.CodeInvalid, Msg: `send {"from":"+15550001111","ids":[]}`}
		}
		ct := d.srv.Contact(strings.TrimSpace(in.From))
		if ct == nil || ct.Phone() != d.phone(c.Param("id")) {
			return &tenant.Error{Code: tenant.CodeNotFound, Msg: "no such contact"}
		}
		ids, err := ct.Read(in.IDs...)
		if err != nil {
			return tenant.Errorf(tenant.CodeConflict, "cannot read: %v", err)
		}
		return c.JSON(http.StatusOK, map[string][]string{"read": append([]string{}, ids...)})
	})
	g.GET("/outbox", func(c echo.Context) error {
		type item struct {
			ID   string `json:"id"`
			To   string `json:"to"`
			Text string `json:"text"`
			At   string `json:"at"`
		}
		out := struct {
			Messages []item `json:"messages"`
		}{Messages: []item{}}
		for _, m := range d.phone(c.Param("id")).Outbox() {
			out.Messages = append(out.Messages, item{ID: m.ID, To: "+" + m.To.User, Text: m.Text, At: m.At.UTC().Format(time.RFC3339Nano)})
		}
		return c.JSON(http.StatusOK, out)
	})
	g.POST("/drop", func(c echo.Context) error {
		dev, err := d.device(c.Param("id"))
		if err != nil {
			return err
		}
		d.srv.Cut(dev)
		return c.NoContent(http.StatusNoContent)
	})
	g.POST("/unlink", func(c echo.Context) error {
		dev, err := d.device(c.Param("id"))
		if err != nil {
			return err
		}
		if err := d.phone(c.Param("id")).Unlink(dev); err != nil {
			return tenant.Errorf(tenant.CodeConflict, "%v", err)
		}
		return c.NoContent(http.StatusNoContent)
	})
}

func (d *demo) device(tenantID string) (types.JID, error) {
	devs := d.phone(tenantID).LinkedDevices()
	if len(devs) == 0 {
		return types.EmptyJID, tenant.Errorf(tenant.CodeConflict, "the tenant has no linked device")
	}
	return devs[len(devs)-1].JID, nil
}

func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}
