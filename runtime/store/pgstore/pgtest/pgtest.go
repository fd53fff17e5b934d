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
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
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

// Proxy is a TCP proxy in front of a test database, to take the database
// away from a process under test and give it back.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// NewProxy starts a proxy to the server of dsn and returns it and the DSN
// to use instead (the same, through the proxy). It stops when t ends.
func NewProxy(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("pgtest: the proxy needs a URL DSN, not %q", dsn)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, target: u.Host}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

// Cut closes every connection through the proxy and refuses new ones
// until Restore: the database is gone, as far as the process can tell.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}
