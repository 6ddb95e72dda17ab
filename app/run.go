package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"time"

	"github.com/mattn/go-isatty"

	"wabot/tenant"
)

// version is set at build time with -ldflags "-X wabot/app.version=v1.2.3".
var version = ""

// Version is the binary's version: the build-time value, else the module
// version or VCS revision recorded by the Go toolchain.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// ShutdownTimeout bounds a graceful stop: HTTP drain, supervisors and the
// database together.
const ShutdownTimeout = 20 * time.Second

const usage = `wabot: a self-hosted, multi-tenant WhatsApp bot platform

Usage:
  wabot [serve] [flags]             serve the portal and run every tenant's session (default)
  wabot migrate [flags]             apply database migrations and exit
  wabot login-link EMAIL [--admin]  print a one-time sign-in URL (15 minutes, single use)
  wabot tenants                     list tenants with status, session state, number, last seen
  wabot instances                   list running wabot instances and how many tenants each runs
  wabot tenant ACTION ID            ACTION is reset, restart, suspend, resume or approve;
                                    the running wabot carries it out
  wabot admin grant EMAIL           make a user an admin
  wabot backup FILE                 write a consistent backup of a running instance to FILE (.tar.gz)
  wabot restore FILE                restore a backup into empty data and sessions folders
  wabot migrate-to-postgres --database-url URL
                                    copy this SQLite installation (database and device
                                    stores) into an empty PostgreSQL database
  wabot systemd-unit [--bin PATH]   print the systemd unit file
  wabot version                     print the version

Flags (each also read from the environment variable named; a flag wins):
`

// commandArgs is how many positional arguments each command takes.
var commandArgs = map[string]int{
	"serve": 0, "migrate": 0, "login-link": 1, "tenants": 0, "instances": 0, "tenant": 2, "admin": 2,
	"backup": 1, "restore": 1, "systemd-unit": 0, "migrate-to-postgres": 0,
}

// Run is the whole program: it parses args (without the program name),
// runs the chosen command until ctx is cancelled and returns its error. A
// *UsageError means exit status 2.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "wabot", Version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		PrintConfigHelp(stdout)
		return nil
	}
	want, known := commandArgs[cmd]
	if !known {
		fmt.Fprint(stderr, usage)
		PrintConfigHelp(stderr)
		return &UsageError{Msg: fmt.Sprintf("unknown command %q", cmd)}
	}
	fs := flag.NewFlagSet("wabot "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := registerConfigFlags(fs)
	admin := fs.Bool("admin", false, "login-link: make the user an admin")
	bin := fs.String("bin", "", "systemd-unit: the binary's path in ExecStart")
	// Positional arguments may come before, between or after flags.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, usage)
				PrintConfigHelp(stdout)
				return nil
			}
			return &UsageError{Msg: err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		return &UsageError{Msg: fmt.Sprintf("wabot %s takes %d argument(s), got %d; see wabot help", cmd, want, len(pos))}
	}
	if cmd == "systemd-unit" {
		path := *bin
		if path == "" {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			path = exe
		}
		fmt.Fprint(stdout, systemdUnit(path))
		return nil
	}
	cfg, err := loadConfig(getenv, fs, flags)
	if err != nil {
		return err
	}
	log := NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if cmd != "serve" {
		// Commands print their result; the log only says what went wrong.
		log = NewLogger(stderr, cfg.LogFormat, "warn")
	}
	switch cmd {
	case "migrate":
		return runMigrate(ctx, cfg, NewLogger(stderr, cfg.LogFormat, cfg.LogLevel))
	case "login-link":
		return runLoginLink(ctx, cfg, log, stdout, pos[0], *admin)
	case "tenants":
		return runTenants(ctx, cfg, log, stdout)
	case "instances":
		return runInstances(ctx, cfg, log, stdout)
	case "tenant":
		return runTenantAction(ctx, cfg, log, stdout, pos[0], pos[1])
	case "admin":
		if pos[0] != "grant" {
			return &UsageError{Msg: "usage: wabot admin grant EMAIL"}
		}
		return runGrantAdmin(ctx, cfg, log, stdout, pos[1])
	case "backup":
		return runBackup(ctx, cfg, log, stdout, pos[0])
	case "restore":
		return runRestore(ctx, cfg, log, stdout, pos[0])
	case "migrate-to-postgres":
		return runMigrateToPostgres(ctx, cfg, log, stdout)
	default:
		return runServe(ctx, cfg, log, getenv, isTerminal(stderr))
	}
}

func runServe(ctx context.Context, cfg *Config, log *slog.Logger, getenv func(string) string, interactive bool) error {
	a, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	n := newNotifier(getenv)
	if err := a.Start(); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
		defer cancel()
		return errors.Join(err, a.Shutdown(sctx))
	}
	if err := a.printFirstAdminLink(ctx, interactive); err != nil {
		log.Error("cannot create the first admin's sign-in link", "err", err)
	}
	systemdDone := make(chan struct{})
	go func() {
		defer close(systemdDone)
		a.superviseSystemd(ctx, n, watchdogInterval(getenv))
	}()
	<-ctx.Done()
	<-systemdDone // it ends with ctx
	log.Info("shutting down", "deadline", ShutdownTimeout)
	if err := n.notify("STOPPING=1"); err != nil {
		log.Warn("cannot notify systemd", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := a.Shutdown(sctx); err != nil {
		return err
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func runMigrate(ctx context.Context, cfg *Config, log *slog.Logger) error {
	if err := ensureDirs(cfg.DataDir); err != nil {
		return err
	}
	st, err := openAndMigrate(ctx, cfg, log)
	if err != nil {
		return err
	}
	v, _ := st.StoredSchemaVersion(ctx)
	log.Info("database is up to date", "version", v)
	return st.Close()
}

func runLoginLink(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, email string, admin bool) error {
	if err := ensureDirs(cfg.DataDir); err != nil {
		return err
	}
	st, err := openAndMigrate(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	token, err := st.CreateLoginLink(ctx, email, admin)
	if err != nil {
		if tenant.ErrorCode(err) == tenant.CodeInvalid {
			return &UsageError{Msg: err.Error()}
		}
		return err
	}
	fmt.Fprintln(stdout, loginURL(cfg, token))
	return nil
}

// isTerminal reports whether w is a terminal, which only the person who
// started wabot reads.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func loginURL(cfg *Config, token string) string {
	return cfg.BaseURL.String() + "/auth/link?token=" + url.QueryEscape(token)
}

// printFirstAdminLink says, while no admin exists, how to become one. On a
// terminal (someone ran wabot by hand) it prints a one-time admin link, so
// a fresh install is usable without any OAuth set up. Elsewhere (the
// journal, a log file, a container's log) it prints only the command: a
// link there would be readable by whoever reads the logs, on every start.
func (a *App) printFirstAdminLink(ctx context.Context, interactive bool) error {
	exists, err := a.store.AdminExists(ctx)
	if err != nil || exists {
		return err
	}
	email := "admin@localhost"
	if len(a.cfg.AdminEmails) > 0 {
		email = a.cfg.AdminEmails[0]
	}
	if !interactive {
		a.log.Warn("no admin yet: run `wabot login-link EMAIL --admin` as the service user, with the service's settings, for a one-time admin sign-in link; " +
			"or sign in through a provider with an address listed in WABOT_ADMIN_EMAILS")
		return nil
	}
	token, err := a.store.CreateLoginLink(ctx, email, true)
	if err != nil {
		return err
	}
	a.log.Warn("no admin yet: open this one-time link within 15 minutes to sign in as admin", "email", email, "url", loginURL(a.cfg, token))
	return nil
}
