package tenant

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Scope is what an API key may do.
type Scope string

const (
	ScopeMessagesSend  Scope = "messages:send"
	ScopeMessagesRead  Scope = "messages:read"
	ScopeSessionManage Scope = "session:manage"
	ScopeBotManage     Scope = "bot:manage"
	// ScopeAdmin is held only by instance keys, which belong to no tenant
	// and provision tenants for an operator.
	ScopeAdmin Scope = "admin"
)

// TenantScopes lists the scopes a tenant's key may hold, in the order
// forms show them.
var TenantScopes = []Scope{ScopeMessagesSend, ScopeMessagesRead, ScopeSessionManage, ScopeBotManage}

// APIKeyPrefix starts every secret, so secret scanners can recognise a
// leaked key.
const APIKeyPrefix = "wabot_"

// apiKeySecretLen is the length of a secret after its prefix: 32 random
// bytes in base62.
const apiKeySecretLen = 43

// apiKeyDisplayLen is how much of a secret the store keeps in clear: the
// prefix and six characters, enough to tell keys apart, far too few to
// guess the rest.
const apiKeyDisplayLen = len(APIKeyPrefix) + 6

const maxAPIKeyName = 80

// lastUsedEvery bounds the writes of last_used_at: at most one a minute
// per key, instead of one per request.
const lastUsedEvery = time.Minute

// APIKey is a key as its owner sees it; the secret itself is never stored.
type APIKey struct {
	ID         string
	TenantID   string // "" for an instance key
	Name       string
	Prefix     string // the secret's first characters
	Scopes     []Scope
	CreatedBy  string // id of the user who created it
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used
	RevokedAt  time.Time // zero while it works
}

// Has reports whether the key holds scope.
func (k APIKey) Has(scope Scope) bool { return slices.Contains(k.Scopes, scope) }

// Revoked reports whether the key was revoked.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// ParseScopes checks scopes a user picked for a tenant's key: at least
// one, each known, no admin. The result is in TenantScopes' order.
func ParseScopes(in []string) ([]Scope, error) {
	if len(in) == 0 {
		return nil, &Error{Code: CodeInvalid, Msg: "choose at least one scope", Fields: map[string]string{"scopes": "Choose at least one scope."}}
	}
	var out []Scope
	for _, s := range TenantScopes {
		if slices.Contains(in, string(s)) {
			out = append(out, s)
		}
	}
	for _, s := range in {
		if !slices.Contains(TenantScopes, Scope(s)) {
			return nil, &Error{Code: CodeInvalid, Msg: fmt.Sprintf("unknown scope %q", s),
				Fields: map[string]string{"scopes": "Use messages:send, messages:read, session:manage or bot:manage."}}
		}
	}
	return out, nil
}

// newAPISecret returns a fresh secret: the prefix and 32 random bytes in
// base62, always the same length.
func newAPISecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	s := new(big.Int).SetBytes(b).Text(62)
	return APIKeyPrefix + strings.Repeat("0", apiKeySecretLen-len(s)) + s
}

// CreateAPIKey creates a key for tenantID ("" for an instance key, which
// holds only the admin scope) and returns it with its secret, which is
// shown once and never again. createdBy is the user creating it.
func (s *Store) CreateAPIKey(ctx context.Context, tenantID, name string, scopes []Scope, createdBy string) (APIKey, string, error) {
	name, err := ValidateName(name, maxAPIKeyName, "key")
	if err != nil {
		return APIKey{}, "", err
	}
	switch {
	case tenantID == "":
		scopes = []Scope{ScopeAdmin}
	case len(scopes) == 0:
		return APIKey{}, "", &Error{Code: CodeInvalid, Msg: "choose at least one scope", Fields: map[string]string{"scopes": "Choose at least one scope."}}
	}
	for _, sc := range scopes {
		if tenantID != "" && !slices.Contains(TenantScopes, sc) {
			return APIKey{}, "", &Error{Code: CodeInvalid, Msg: fmt.Sprintf("a workspace's key cannot hold the scope %q", sc),
				Fields: map[string]string{"scopes": "Use messages:send, messages:read, session:manage or bot:manage."}}
		}
	}
	secret := newAPISecret()
	k := APIKey{ID: NewID("k"), TenantID: tenantID, Name: name, Prefix: secret[:apiKeyDisplayLen], Scopes: scopes,
		CreatedBy: createdBy, CreatedAt: fromMS(ms(s.now()))}
	_, err = s.db.write.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, name, secret_hash, prefix, scopes, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, k.ID, nullString(tenantID), k.Name, hashToken(secret), k.Prefix, joinScopes(scopes), createdBy, ms(k.CreatedAt))
	if err != nil {
		return APIKey{}, "", fmt.Errorf("creating API key: %w", err)
	}
	return k, secret, nil
}

func joinScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, sc := range scopes {
		parts[i] = string(sc)
	}
	return strings.Join(parts, " ")
}

const selectAPIKey = `SELECT id, COALESCE(tenant_id, ''), name, prefix, scopes, created_by, created_at, last_used_at, revoked_at FROM api_keys`

func scanAPIKey(row interface{ Scan(...any) error }) (APIKey, error) {
	var k APIKey
	var scopes string
	var created int64
	var used, revoked sql.NullInt64
	err := row.Scan(&k.ID, &k.TenantID, &k.Name, &k.Prefix, &scopes, &k.CreatedBy, &created, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, err
	}
	for _, sc := range strings.Fields(scopes) {
		k.Scopes = append(k.Scopes, Scope(sc))
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = fromMS(created), fromNullMS(used), fromNullMS(revoked)
	return k, nil
}

// APIKeys lists a tenant's keys ("" lists the instance keys), revoked ones
// included, newest first.
func (s *Store) APIKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	var rows *sql.Rows
	var err error
	if tenantID == "" {
		rows, err = s.db.read.QueryContext(ctx, selectAPIKey+` WHERE tenant_id IS NULL ORDER BY created_at DESC, id`)
	} else {
		rows, err = s.db.read.QueryContext(ctx, selectAPIKey+` WHERE tenant_id = ? ORDER BY created_at DESC, id`, tenantID)
	}
	if err != nil {
		return nil, fmt.Errorf("listing API keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey revokes tenantID's key id ("" for an instance key). A key
// of another tenant is not found, whatever its id; revoking twice keeps
// the first time.
func (s *Store) RevokeAPIKey(ctx context.Context, tenantID, id string) error {
	var res sql.Result
	var err error
	if tenantID == "" {
		res, err = s.db.write.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id IS NULL`, ms(s.now()), id)
	} else {
		res, err = s.db.write.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?`, ms(s.now()), id, tenantID)
	}
	if err != nil {
		return fmt.Errorf("revoking API key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ErrAPIKeyInvalid refuses a secret that is unknown, malformed or revoked,
// alike: a caller learns nothing about which.
var ErrAPIKeyInvalid = &Error{Code: CodeUnauthorized, Msg: "the API key is missing, unknown or revoked"}

// AuthenticateAPIKey finds the working key whose secret this is and
// records its use, at most once a minute. Secrets are 256 random bits, so
// a plain SHA-256 looked up by equality is enough: there is nothing to
// stretch and no comparison to time.
func (s *Store) AuthenticateAPIKey(ctx context.Context, secret string) (APIKey, error) {
	if !strings.HasPrefix(secret, APIKeyPrefix) || len(secret) != len(APIKeyPrefix)+apiKeySecretLen {
		return APIKey{}, ErrAPIKeyInvalid
	}
	k, err := scanAPIKey(s.db.read.QueryRowContext(ctx, selectAPIKey+` WHERE secret_hash = ?`, hashToken(secret)))
	if errors.Is(err, ErrNotFound) || (err == nil && k.Revoked()) {
		return APIKey{}, ErrAPIKeyInvalid
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("reading API key: %w", err)
	}
	now := s.now()
	if now.Sub(k.LastUsedAt) >= lastUsedEvery {
		// The condition repeats the check, so concurrent requests write once.
		if _, err := s.db.write.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`,
			ms(now), k.ID, ms(now.Add(-lastUsedEvery))); err != nil {
			return APIKey{}, fmt.Errorf("recording API key use: %w", err)
		}
		k.LastUsedAt = fromMS(ms(now))
	}
	return k, nil
}

// Actor is the key as the audit log names whoever acted: its id and a
// label an admin can read.
func (k APIKey) Actor() User {
	return User{ID: k.ID, Email: "API key " + k.Prefix + "… (" + k.Name + ")"}
}
