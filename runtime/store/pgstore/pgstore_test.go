package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/storetest"
)

func TestConformance(t *testing.T) {
	dsn := packageDSN(t)
	storetest.Run(t, func(t testing.TB, now func() time.Time) store.Store {
		s, err := Open(context.Background(), Config{DSN: dsn, Schema: newSchema(), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func open(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// countingHandler counts the log records with a given message.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestConcurrentOpen opens one empty database from several goroutines at
// once, as hosts starting together do: every Open succeeds, and the schema is
// migrated once.
func TestConcurrentOpen(t *testing.T) {
	dsn := newDatabase(t)
	var migrated atomic.Int64
	logger := slog.New(countingHandler{msg: "pgstore: migrated database schema", n: &migrated})
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(context.Background(), Config{DSN: dsn, Logger: logger})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	if got := migrated.Load(); got != 1 {
		t.Fatalf("the schema was migrated %d times, want once", got)
	}
	var rows, version int
	err := stores[0].pool.QueryRow(context.Background(),
		`SELECT count(*), max(version) FROM agenthost.schema_migrations`).Scan(&rows, &version)
	if err != nil {
		t.Fatal(err)
	}
	if rows != SchemaVersion || version != SchemaVersion {
		t.Fatalf("schema_migrations has %d rows up to version %d, want %d up to %d", rows, version, SchemaVersion, SchemaVersion)
	}
	// A later Open finds the schema current and migrates nothing.
	open(t, Config{DSN: dsn, Logger: logger})
	if got := migrated.Load(); got != 1 {
		t.Fatalf("reopening migrated again (%d migrations)", got)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	s := open(t, Config{DSN: dsn})
	if _, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', now())`,
		SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, Config{DSN: dsn})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open error = %v, want ErrNewerSchema", err)
	}
	want := fmt.Sprintf("is at schema version %d, this build knows up to %d", SchemaVersion+1, SchemaVersion)
	if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "pgstore: open ") {
		t.Fatalf("Open error %q does not name both versions (%q)", err, want)
	}
	// Nothing was changed: the record is still there, the history too.
	if r, err := s.Get(ctx, "ns", "k"); err != nil || string(r.Value) != "v" {
		t.Fatalf("after a refused Open: %+v, %v", r, err)
	}
	var rows int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != SchemaVersion+1 {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", rows, err, SchemaVersion+1)
	}
}

func TestRefusesForeignSchema(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	tests := []struct {
		name, schema, setup string
	}{
		{"another program's tables", "shop", `CREATE SCHEMA shop; CREATE TABLE shop.orders (id int PRIMARY KEY)`},
		{"another schema_migrations", "rails", `CREATE SCHEMA rails; CREATE TABLE rails.schema_migrations (version varchar PRIMARY KEY);
			INSERT INTO rails.schema_migrations VALUES ('20240101000000')`},
	}
	admin := open(t, Config{DSN: dsn, Schema: "admin"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := admin.pool.Exec(ctx, tt.setup); err != nil {
				t.Fatal(err)
			}
			_, err := Open(ctx, Config{DSN: dsn, Schema: tt.schema})
			if !errors.Is(err, ErrForeignSchema) {
				t.Fatalf("Open error = %v, want ErrForeignSchema", err)
			}
			var n int
			err = admin.pool.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
				WHERE ns.nspname = $1`, tt.schema).Scan(&n)
			if err != nil || n != 2 { // the table and its primary key index
				t.Fatalf("schema %s holds %d relations after a refused Open (%v), want 2", tt.schema, n, err)
			}
		})
	}
	// An empty schema someone created for us is used as it is.
	if _, err := admin.pool.Exec(ctx, `CREATE SCHEMA given`); err != nil {
		t.Fatal(err)
	}
	open(t, Config{DSN: dsn, Schema: "given"})
}

func TestPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	s, err := Open(ctx, Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "log", []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "leader", "host-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, Config{DSN: dsn})
	got, err := s.Get(ctx, "ns", "k")
	if err != nil || got.Version != r.Version || string(got.Value) != "v" || !got.ExpiresAt.Equal(r.ExpiresAt) || !got.UpdatedAt.Equal(r.UpdatedAt) {
		t.Fatalf("after reopen Get = %+v, %v; want %+v", got, err, r)
	}
	es, err := s.Read(ctx, "log", 0, 10)
	if err != nil || len(es) != 2 || string(es[0].Data) != "a" || string(es[1].Data) != "b" {
		t.Fatalf("after reopen Read = %+v, %v", es, err)
	}
	if _, err := s.AcquireLease(ctx, "leader", "host-b", time.Hour); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("lease after reopen: %v, want ErrLeaseHeld", err)
	}
	if _, err := s.RenewLease(ctx, lease, time.Hour); err != nil {
		t.Fatalf("renew after reopen: %v", err)
	}
	r2, err := s.Put(ctx, "ns", "k2", nil, store.PutOptions{})
	if err != nil || r2.Version <= lease.Token {
		t.Fatalf("version after reopen = %d, want > %d (%v)", r2.Version, lease.Token, err)
	}
	if first, err := s.Append(ctx, "log", []byte("c")); err != nil || first != 2 {
		t.Fatalf("Append after reopen = %d, %v; want 2", first, err)
	}
}

// TestTwoStores opens one database twice, as two hosts do, and checks that
// each sees the other's writes and that conditions, appends and leases
// serialise across both.
func TestTwoStores(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	a, b := open(t, Config{DSN: dsn}), open(t, Config{DSN: dsn})
	stores := []*Store{a, b}

	// Writes through one are read through the other.
	ra, err := a.Put(ctx, "ns", "k", []byte("from a"), store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "ns", "k"); err != nil || string(got.Value) != "from a" || got.Version != ra.Version {
		t.Fatalf("b.Get = %+v, %v", got, err)
	}
	rb, err := b.Put(ctx, "ns", "k", []byte("from b"), store.PutOptions{Condition: store.IfVersion(ra.Version)})
	if err != nil || rb.Version <= ra.Version {
		t.Fatalf("b.Put if version = %+v, %v", rb, err)
	}
	if _, err := a.Put(ctx, "ns", "k", nil, store.PutOptions{Condition: store.IfVersion(ra.Version)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a.Put at a stale version: %v, want ErrConflict", err)
	}

	const n = 16
	for round := range 5 {
		var wg sync.WaitGroup
		var wins, conflicts atomic.Int64
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := stores[i%2].Put(ctx, "replay", fmt.Sprintf("jti-%d", round), nil,
					store.PutOptions{Condition: store.IfAbsent, TTL: time.Hour})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("Put: %v", err)
				}
				for j := range 10 {
					if _, err := stores[i%2].Append(ctx, "audit", fmt.Appendf(nil, "%d-%d-%d", round, i, j)); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != n-1 {
			t.Fatalf("round %d: %d winners and %d conflicts of put-if-absent across two stores, want 1 and %d",
				round, wins.Load(), conflicts.Load(), n-1)
		}
	}
	es, err := b.Read(ctx, "audit", 0, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range es {
		if e.Index != int64(i) || seen[string(e.Data)] {
			t.Fatalf("entry %d: index %d, data %q (gap or duplicate)", i, e.Index, e.Data)
		}
		seen[string(e.Data)] = true
	}
	if len(es) != 5*n*10 {
		t.Fatalf("%d entries, want %d", len(es), 5*n*10)
	}
	if l, err := a.Len(ctx, "audit"); err != nil || l != int64(len(es)) {
		t.Fatalf("a.Len = %d, %v; want %d", l, err, len(es))
	}

	// Conditional appends from both: exactly one takes each index.
	var wg sync.WaitGroup
	var won atomic.Int64
	at := int64(len(es))
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%2].AppendLogs(ctx,
				store.LogAppend{Log: "audit", Entries: [][]byte{fmt.Appendf(nil, "sealed-%d", i)}, IfAt: true, At: at},
				store.LogAppend{Log: "seals", Entries: [][]byte{fmt.Appendf(nil, "seal-%d", i)}})
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("AppendLogs: %v", err)
			}
		}()
	}
	wg.Wait()
	if l, _ := a.Len(ctx, "seals"); won.Load() != 1 || l != 1 {
		t.Fatalf("%d conditional appends at %d won, seals has %d entries; want 1 and 1", won.Load(), at, l)
	}

	// A lease held through one is held for the other.
	la, err := a.AcquireLease(ctx, "checkpointer", "host-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, "checkpointer", "host-b", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("b.AcquireLease of a's lease: %v, want ErrLeaseHeld", err)
	}
	if err := b.ReleaseLease(ctx, la); err != nil {
		t.Fatalf("b releasing a's lease on its behalf: %v", err)
	}
	if _, err := b.AcquireLease(ctx, "checkpointer", "host-b", time.Minute); err != nil {
		t.Fatal(err)
	}
}

// listen returns a TCP listener on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestOpenErrors(t *testing.T) {
	// A port nothing listens on.
	ln := listen(t)
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// A server that accepts connections and never answers.
	mute := listen(t)
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	const password = "pa55-w0rd-never-shown"
	tests := []struct {
		name    string
		cfg     Config
		wantErr error // nil: any error
		wantMsg string
	}{
		{"empty DSN", Config{}, store.ErrInvalid, "empty DSN"},
		{"malformed URL", Config{DSN: "postgres://me:" + password + "@host:notaport/db"}, store.ErrInvalid, "not a PostgreSQL connection string: invalid port"},
		{"bad percent-encoding", Config{DSN: "postgres://me:" + password + "%zz@host/db"}, store.ErrInvalid, "invalid percent-encoded token in password"},
		{"bad sslmode", Config{DSN: "postgres://me:" + password + "@host/db?sslmode=sometimes"}, store.ErrInvalid, "sslmode is invalid"},
		{"malformed keywords", Config{DSN: "host=x password=" + password + " port='"}, store.ErrInvalid, "unterminated quoted string"},
		{"bad schema", Config{DSN: "postgres://localhost/db", Schema: "Bad-Schema"}, store.ErrInvalid, `schema "Bad-Schema"`},
		{"refused", Config{DSN: fmt.Sprintf("postgres://me:%s@127.0.0.1:%d/db?sslmode=disable", password, closedPort)},
			ErrUnavailable, fmt.Sprintf("pgstore: open me@127.0.0.1:%d/db: database unavailable", closedPort)},
		{"no answer", Config{DSN: fmt.Sprintf("postgres://me:%s@%s/db?sslmode=disable", password, mute.Addr()), ConnectTimeout: 300 * time.Millisecond},
			ErrUnavailable, "database unavailable: no answer within the connect timeout (300ms)"},
		{"no answer, timeout in the DSN", Config{DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=me password=%s dbname=db sslmode=disable connect_timeout=1",
			mute.Addr().(*net.TCPAddr).Port, password)}, ErrUnavailable, "database unavailable"},
	}
	if skipWhy == "" {
		tests = append(tests, struct {
			name    string
			cfg     Config
			wantErr error
			wantMsg string
		}{"missing database", Config{DSN: dsnFor(t, packageDB+"_missing")}, nil, "does not exist"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := Open(context.Background(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Open took %v to fail", took)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && errors.Is(err, ErrUnavailable) {
				t.Fatalf("Open error = %v, want a configuration error, not ErrUnavailable", err)
			}
			if !strings.HasPrefix(err.Error(), "pgstore: open") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Open error %q, want the prefix %q and %q", err, "pgstore: open", tt.wantMsg)
			}
			t.Logf("%v (%v)", err, time.Since(start))
			if strings.Contains(err.Error(), password) {
				t.Fatalf("Open error %q shows the password", err)
			}
		})
	}
}

// proxy forwards TCP connections to the PostgreSQL server until cut, which
// breaks every connection and refuses new ones, as a server going away does.
type proxy struct {
	t               *testing.T
	network, target string
	mu              sync.Mutex
	ln              net.Listener
	addr            string
	conns           []net.Conn
	mute            atomic.Bool // drop the server's replies, then the connection
}

// replies reads the server's side of a proxied connection. Once muted, it
// drops what the server sends and breaks the connection: the server has
// done what it was asked, the client never hears of it.
type replies struct {
	up, down net.Conn
	mute     *atomic.Bool
}

func (r replies) Read(b []byte) (int, error) {
	n, err := r.up.Read(b)
	if r.mute.Load() {
		r.up.Close()
		r.down.Close()
		return 0, io.EOF
	}
	return n, err
}

func newProxy(t *testing.T, network, target string) *proxy {
	p := &proxy{t: t, network: network, target: target}
	p.ln = listen(t)
	p.addr = p.ln.Addr().String()
	go p.serve(p.ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial(p.network, p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, replies{up, c, &p.mute}); c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("relisten on %s: %v", p.addr, err)
	}
	p.ln = ln
	go p.serve(ln)
}

// TestConnectionLoss cuts the connection to the server under a Store: calls
// fail with ErrUnavailable (quickly, not hanging), Ping says so, and
// everything works again once the server is back, without reopening. A cut
// shorter than the retry timeout is not seen at all.
func TestConnectionLoss(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	network, addr, err := serverAddr(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, network, addr)
	viaProxy := throughProxy(t, dsn, p.addr)
	s := open(t, Config{DSN: viaProxy, ConnectTimeout: time.Second, RetryTimeout: 300 * time.Millisecond})
	if _, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	p.cut()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "ns", "k"); return err }},
		{"Put", func() error { _, err := s.Put(ctx, "ns", "k2", nil, store.PutOptions{}); return err }},
		{"Append", func() error { _, err := s.Append(ctx, "log", []byte("x")); return err }},
		{"AcquireLease", func() error { _, err := s.AcquireLease(ctx, "l", "h", time.Minute); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s while the server is gone: %v, want ErrUnavailable", c.name, err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("%s took %v to fail", c.name, took)
		}
		t.Logf("%s: %v (%v)", c.name, err, time.Since(start))
		if !strings.Contains(err.Error(), "database unavailable") {
			t.Fatalf("%s error %q does not say the database is unavailable", c.name, err)
		}
	}

	p.restore()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the server came back: %v", err)
	}
	if r, err := s.Get(ctx, "ns", "k"); err != nil || string(r.Value) != "v" {
		t.Fatalf("Get after the server came back: %+v, %v", r, err)
	}
	if _, err := s.Append(ctx, "log", []byte("y")); err != nil {
		t.Fatalf("Append after the server came back: %v", err)
	}

	// A short outage within the retry budget: the transaction is retried
	// once the server is back, and succeeds.
	s2 := open(t, Config{DSN: viaProxy, ConnectTimeout: time.Second, RetryTimeout: 5 * time.Second})
	p.cut()
	go func() {
		time.Sleep(300 * time.Millisecond)
		p.restore()
	}()
	if _, err := s2.Put(ctx, "ns", "k3", []byte("after a blip"), store.PutOptions{Condition: store.IfAbsent}); err != nil {
		t.Fatalf("Put across a short outage: %v", err)
	}
	if r, err := s.Get(ctx, "ns", "k3"); err != nil || string(r.Value) != "after a blip" {
		t.Fatalf("Get = %+v, %v", r, err)
	}
}

// serverAddr returns the network address a DSN's connections go to.
func serverAddr(dsn string) (network, addr string, err error) {
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", "", err
	}
	port := strconv.Itoa(int(c.Port))
	if strings.HasPrefix(c.Host, "/") {
		return "unix", filepath.Join(c.Host, ".s.PGSQL."+port), nil
	}
	return "tcp", net.JoinHostPort(c.Host, port), nil
}

// throughProxy returns dsn with its host and port replaced by addr's.
func throughProxy(t *testing.T, dsn, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = addr
		q := u.Query()
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " host=" + host + " port=" + port
}

// TestServerTerminatesConnections kills every connection of a Store from the
// server's side (pg_terminate_backend, as a failover or an administrator
// does): the pool reconnects and reads carry on.
func TestServerTerminatesConnections(t *testing.T) {
	ctx := context.Background()
	s := open(t, Config{DSN: packageDSN(t), Schema: newSchema()})
	admin := open(t, Config{DSN: packageDSN(t), Schema: newSchema()})
	if _, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'agenthost'`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r, err := s.Get(ctx, "ns", "k"); err != nil || string(r.Value) != "v" {
			t.Fatalf("Get after the server closed the connections: %+v, %v", r, err)
		}
	}
	if _, err := s.Put(ctx, "ns", "k", []byte("w"), store.PutOptions{}); err != nil {
		t.Fatalf("Put after the server closed the connections: %v", err)
	}
}

func TestPing(t *testing.T) {
	s := open(t, Config{DSN: packageDSN(t), Schema: newSchema()})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Total < 1 || st.Max < 1 {
		t.Fatalf("Stats = %+v", st)
	}
	s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
}

// TestClockIsTheHosts checks that expiry follows Config.Now, not the
// server's clock: a record written with a one-hour TTL by a Store whose
// clock is a day behind is live for that Store and expired for one on the
// real time.
func TestClockIsTheHosts(t *testing.T) {
	ctx := context.Background()
	dsn, schema := packageDSN(t), newSchema()
	past := func() time.Time { return time.Now().Add(-24 * time.Hour) }
	s := open(t, Config{DSN: dsn, Schema: schema, Now: past})
	now := open(t, Config{DSN: dsn, Schema: schema})
	if _, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "ns", "k"); err != nil {
		t.Fatalf("Get on the writer's clock: %v", err)
	}
	if _, err := now.Get(ctx, "ns", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get a day later: %v, want ErrNotFound", err)
	}
}

// TestOutcomeUnknown breaks the connection after the server executed a
// statement but before the reply reached the Store: a one-statement Append
// then reports that it may have been applied (it was), while a transaction
// that broke before its COMMIT reports ErrUnavailable alone (and was not
// applied).
func TestOutcomeUnknown(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	network, addr, err := serverAddr(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, network, addr)
	s := open(t, Config{DSN: throughProxy(t, dsn, p.addr), MaxConns: 1, RetryTimeout: 200 * time.Millisecond})
	if _, err := s.Append(ctx, "log", []byte("a")); err != nil {
		t.Fatal(err)
	}
	p.mute.Store(true)
	_, err = s.Append(ctx, "log", []byte("b"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Append whose reply was lost: %v, want ErrUnavailable and ErrOutcomeUnknown", err)
	}
	t.Log(err)
	p.mute.Store(false)
	if _, err := s.Len(ctx, "log"); err != nil { // a pooled connection again
		t.Fatal(err)
	}
	p.mute.Store(true)
	_, err = s.Put(ctx, "ns", "k", nil, store.PutOptions{})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Put that broke before its COMMIT: %v, want ErrUnavailable alone", err)
	}
	t.Log(err)
	p.mute.Store(false)
	if n, err := s.Len(ctx, "log"); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v; want 2 (the unacknowledged append was applied)", n, err)
	}
	if _, err := s.Get(ctx, "ns", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of the failed Put: %v, want ErrNotFound", err)
	}
}

// TestListPrefixUTF8 lists by prefixes whose last byte cannot simply be
// incremented (the result would not be UTF-8, which PostgreSQL refuses).
func TestListPrefixUTF8(t *testing.T) {
	ctx := context.Background()
	s := open(t, Config{DSN: packageDSN(t), Schema: newSchema()})
	keys := []string{"x\u00bf", "x\u00bfa", "x\u00c0", "x\u007f", "x\u007fz", "x\u0080", "\U0010ffff", "\U0010ffffa", "y"}
	for _, k := range keys {
		if _, err := s.Put(ctx, "ns", k, nil, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"x\u00bf", []string{"x\u00bf", "x\u00bfa"}},
		{"x\u007f", []string{"x\u007f", "x\u007fz"}},
		{"\U0010ffff", []string{"\U0010ffff", "\U0010ffffa"}},
		{"x", []string{"x\u007f", "x\u007fz", "x\u0080", "x\u00bf", "x\u00bfa", "x\u00c0"}},
	}
	for _, tt := range tests {
		recs, err := s.List(ctx, "ns", tt.prefix, "", 100)
		if err != nil {
			t.Fatalf("List(%q): %v", tt.prefix, err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.Key)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
		if n, err := s.Count(ctx, "ns", tt.prefix); err != nil || n != len(tt.want) {
			t.Errorf("Count(%q) = %d, %v; want %d", tt.prefix, n, err, len(tt.want))
		}
	}
}

// TestReadCommitted checks that the Store's connections run at READ
// COMMITTED, which its locking assumes, even in a database whose default
// is SERIALIZABLE.
func TestReadCommitted(t *testing.T) {
	ctx := context.Background()
	dsn, name := newNamedDatabase(t)
	if err := adminExec(`ALTER DATABASE ` + pgx.Identifier{name}.Sanitize() + ` SET default_transaction_isolation = 'serializable'`); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{DSN: dsn})
	var level string
	if err := s.pool.QueryRow(ctx, `SHOW transaction_isolation`).Scan(&level); err != nil || level != "read committed" {
		t.Fatalf("transaction_isolation = %q (%v), want read committed", level, err)
	}
	if _, err := s.Put(ctx, "ns", "k", nil, store.PutOptions{Condition: store.IfAbsent}); err != nil {
		t.Fatal(err)
	}
}
