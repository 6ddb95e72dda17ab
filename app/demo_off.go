//go:build !fakewa

package app

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"wabot/session"
	"wabot/tenant"
)

// demo is empty in the production build: no fake WhatsApp, no /dev routes.
type demo struct{}

func startDemo(*slog.Logger) (*demo, error) { return &demo{}, nil }

func (*demo) enabled() bool                    { return false }
func (*demo) allowsLoopbackModels() bool       { return false }
func (*demo) connector() session.Connector     { return session.DirectConnector{} }
func (*demo) routes(*echo.Echo, *tenant.Store) {}
func (*demo) close()                           {}
