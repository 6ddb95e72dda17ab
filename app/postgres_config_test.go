package app

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// A database URL carries a password: a bad one is refused without
// echoing it, and SQLite-only commands point a PostgreSQL installation
// to pg_dump instead of failing on a file that is not there.
func TestDatabaseURLIsCheckedWithoutEchoingIt(t *testing.T) {
	_, err := loadConfig(envFrom(map[string]string{"WABOT_DATABASE_URL": "mysql://wabot:hunter2@db/wabot"}), nil, nil)
	var usage *UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "WABOT_DATABASE_URL") {
		t.Fatalf("a MySQL URL: %v, want a usage error naming the variable", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error shows the password: %v", err)
	}
	env := envFrom(map[string]string{"WABOT_DATABASE_URL": "postgres://wabot:hunter2@127.0.0.1:1/wabot", "WABOT_DATA_DIR": t.TempDir()})
	for _, cmd := range [][]string{{"backup", filepath.Join(t.TempDir(), "b.tar.gz")}, {"restore", filepath.Join(t.TempDir(), "b.tar.gz")}} {
		err := Run(context.Background(), cmd, env, io.Discard, io.Discard)
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "pg_dump") {
			t.Fatalf("wabot %s on PostgreSQL: %v, want a usage error pointing to pg_dump", cmd[0], err)
		}
	}
}
