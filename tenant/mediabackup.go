package tenant

import (
	"context"
	"fmt"
)

// mediaSchemaVersion is the migration that added media_files
// (0007_media.sql): a database older than that has no media.
const mediaSchemaVersion = 7

// MediaFileList lists every tenant's stored files (tenant, hash, size),
// ordered by tenant and hash, so that a backup can copy exactly the files
// its database snapshot refers to. A database from before media existed
// has none.
func (s *Store) MediaFileList(ctx context.Context) ([]MediaFile, error) {
	v, err := s.StoredSchemaVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading schema version: %w", err)
	}
	if v < mediaSchemaVersion {
		return nil, nil
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT tenant_id, sha256, size FROM media_files ORDER BY tenant_id, sha256`)
	if err != nil {
		return nil, fmt.Errorf("listing media files: %w", err)
	}
	defer rows.Close()
	var out []MediaFile
	for rows.Next() {
		var f MediaFile
		if err := rows.Scan(&f.TenantID, &f.SHA256, &f.Size); err != nil {
			return nil, fmt.Errorf("listing media files: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// ValidSHA256 reports whether s is a media file's name: 64 lower-case hex
// digits.
func ValidSHA256(s string) bool { return sha256Pattern.MatchString(s) }

// MediaLinkKeyFile is the media link key's file name in the data folder,
// and MediaLinkKeySize its size, for backups to copy and check it.
const (
	MediaLinkKeyFile = mediaLinkKeyFile
	MediaLinkKeySize = 32
)
