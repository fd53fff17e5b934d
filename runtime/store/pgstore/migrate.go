package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the schema version this build writes: the number of its
// migrations.
const SchemaVersion = 1

// migrationFiles are the migrations, one file per version, named
// NNNN_name.sql (version NNNN, from 0001 with no gaps). A shipped file is
// never edited: a change to the schema is the next file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var migrations = mustLoadMigrations(migrationFiles)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic("pgstore: " + err.Error())
	}
	return ms
}

// loadMigrations reads the migrations of fsys in version order and checks
// that their versions run from 1 without a gap.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for i, name := range names { // fs.Glob returns names sorted
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 || label == "" {
			return nil, fmt.Errorf("migration %s: want a name like 0001_initial.sql", name)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d", name, v, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: label, sql: string(b)})
	}
	return ms, nil
}

// historyComment marks the schema_migrations table this package creates, so
// that another program's table of the same name is not mistaken for it.
const historyComment = "agenthost pgstore schema history"

// migrateLockKey is the advisory lock (per database) under which a schema is
// migrated: FNV-1a of the package and the schema name.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("agenthost/pgstore migrate " + schema))
	return int64(h.Sum64())
}

// migrate brings the schema up to date in one transaction that first takes
// the schema's advisory lock: a second host opening the database at the same
// time waits, then finds the schema current. A database at a newer version
// is refused before anything is written.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey(s.schema)); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	have, err := s.schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("%w: the database (schema %s) is at schema version %d, this build knows up to %d",
			ErrNewerSchema, s.schema, have, len(migrations))
	}
	if have == len(migrations) {
		return nil // the deferred rollback releases the lock
	}
	for _, m := range migrations[have:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate to schema version %d (%s): %w", m.version, m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, s.now()); err != nil {
			return fmt.Errorf("record schema version %d: %w", m.version, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit schema version %d: %w", len(migrations), err)
	}
	s.log.InfoContext(ctx, "pgstore: migrated database schema", slog.String("database", s.target),
		slog.String("schema", s.schema), slog.Int("from", have), slog.Int("to", len(migrations)))
	return nil
}

// schemaVersion returns the schema's version (0 for a schema that is missing
// or empty, which it then creates), inside the migration transaction.
func (s *Store) schemaVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var exists bool
	var objects int
	var history *string // the comment on schema_migrations; nil without the table
	err := tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')),
		(SELECT COALESCE(obj_description(c.oid, 'pg_class'), '') FROM pg_class c
		 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'schema_migrations')`,
		s.schema).Scan(&exists, &objects, &history)
	if err != nil {
		return 0, fmt.Errorf("read schema %s: %w", s.schema, err)
	}
	switch {
	case !exists:
		// CREATE SCHEMA needs the CREATE privilege on the database, so it
		// is only run when the schema is missing: a DBA may create it for
		// an unprivileged user.
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return 0, fmt.Errorf("create schema %s: %w", s.schema, err)
		}
		return 0, nil
	case history == nil && objects == 0:
		return 0, nil
	case history == nil:
		return 0, fmt.Errorf("%w: schema %s holds %d tables or sequences and no schema_migrations", ErrForeignSchema, s.schema, objects)
	case *history != historyComment:
		return 0, fmt.Errorf("%w: schema %s has a schema_migrations table that another program created", ErrForeignSchema, s.schema)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		if sqlState(err) != "" {
			err = errors.Join(ErrForeignSchema, err)
		}
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return have, nil
}
