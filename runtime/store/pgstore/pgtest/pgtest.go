// Package pgtest gives tests of other packages a PostgreSQL database of
// their own: the server named by AGENTHOST_TEST_POSTGRES_DSN (by default
// the local one with trust authentication), a database created for the
// test and dropped when it ends. Where no server answers within two
// seconds the test is skipped, saying how to run it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable with the test server's DSN.
const EnvDSN = "AGENTHOST_TEST_POSTGRES_DSN"

// DefaultDSN is the test server when EnvDSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerDSN is the test server's DSN.
func ServerDSN() string {
	if s := os.Getenv(EnvDSN); s != "" {
		return s
	}
	return DefaultDSN
}

// NewDatabase creates an empty UTF8 database for t, dropped (with any
// connection left to it) when t ends, and returns its DSN. It skips t
// when no server answers.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	conn, err := pgx.Connect(ctx, server)
	cancel()
	if err != nil {
		t.Skipf("no PostgreSQL server answers (%v): start one (trust authentication, a user that may create databases) "+
			"or set %s to a server's DSN to run this test", err, EnvDSN)
	}
	_ = conn.Close(context.Background())
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "agenthost_test_" + hex.EncodeToString(suffix)
	if err := exec(server, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` ENCODING 'UTF8' TEMPLATE template0`); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := exec(server, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	if strings.HasPrefix(server, "postgres://") || strings.HasPrefix(server, "postgresql://") {
		u, err := url.Parse(server)
		if err != nil {
			t.Fatalf("pgtest: %s: %v", EnvDSN, err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return server + " dbname=" + name
}

func exec(server, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}
