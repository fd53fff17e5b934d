package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tests run against a real PostgreSQL server: the one named by
// AGENTHOST_TEST_POSTGRES_DSN, by default the local server with trust
// authentication. The DSN's user must be allowed to create databases. The
// package's tests create one database of their own (and a few more for the
// tests that need an empty one) and drop them at the end. Where no server
// answers within two seconds, the tests are skipped with a message saying
// how to run them.
const (
	testDSNEnv     = "AGENTHOST_TEST_POSTGRES_DSN"
	defaultTestDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

var (
	serverDSN string // the server, from the environment
	packageDB string // the database the package's tests share
	skipWhy   string // why the tests are skipped, if they are
	dbSeq     atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	serverDSN = os.Getenv(testDSNEnv)
	if serverDSN == "" {
		serverDSN = defaultTestDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	conn, err := pgx.Connect(ctx, serverDSN)
	cancel()
	if err != nil {
		skipWhy = fmt.Sprintf("no PostgreSQL server answers at %s (%v): start one (trust authentication, a user that may "+
			"create databases) or set %s to a server's DSN to run these tests", serverTarget(), err, testDSNEnv)
		return m.Run()
	}
	_ = conn.Close(context.Background())
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("agenthost_pgstore_test_%d_%s", os.Getpid(), hex.EncodeToString(suffix))
	if err := createDatabase(name); err != nil {
		fmt.Fprintf(os.Stderr, "pgstore tests: create database %s: %v\n", name, err)
		return 1
	}
	packageDB = name
	code := m.Run()
	if err := dropDatabase(name); err != nil {
		fmt.Fprintf(os.Stderr, "pgstore tests: drop database %s: %v\n", name, err)
	}
	return code
}

// serverTarget names the test server for messages without its password.
func serverTarget() string {
	c, err := pgx.ParseConfig(serverDSN)
	if err != nil {
		return testDSNEnv
	}
	return describe(c)
}

func adminExec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func createDatabase(name string) error {
	return adminExec(`CREATE DATABASE ` + pgx.Identifier{name}.Sanitize() + ` ENCODING 'UTF8' TEMPLATE template0`)
}

func dropDatabase(name string) error {
	return adminExec(`DROP DATABASE IF EXISTS ` + pgx.Identifier{name}.Sanitize() + ` WITH (FORCE)`)
}

// dsnFor returns the server's DSN with the database replaced.
func dsnFor(t testing.TB, db string) string {
	t.Helper()
	if strings.HasPrefix(serverDSN, "postgres://") || strings.HasPrefix(serverDSN, "postgresql://") {
		u, err := url.Parse(serverDSN)
		if err != nil {
			t.Fatalf("%s: %v", testDSNEnv, err)
		}
		u.Path = "/" + db
		return u.String()
	}
	return serverDSN + " dbname=" + db
}

// needServer skips t when no server answers.
func needServer(t testing.TB) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

// packageDSN is the DSN of the database the package's tests share; tests
// that use it keep apart by schema.
func packageDSN(t testing.TB) string {
	needServer(t)
	return dsnFor(t, packageDB)
}

// newDatabase creates an empty database for t, dropped when t ends, and
// returns its DSN.
func newDatabase(t testing.TB) string {
	dsn, _ := newNamedDatabase(t)
	return dsn
}

// newNamedDatabase is newDatabase that also returns the database's name.
func newNamedDatabase(t testing.TB) (dsn, name string) {
	needServer(t)
	name = fmt.Sprintf("%s_%d", packageDB, dbSeq.Add(1))
	if err := createDatabase(name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return dsnFor(t, name), name
}

// newSchema returns a schema name no other test uses.
func newSchema() string {
	return fmt.Sprintf("test_%d", dbSeq.Add(1))
}
