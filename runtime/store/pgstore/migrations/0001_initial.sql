-- Schema 1 of pgstore: records, logs and leases.
--
-- A shipped migration is never edited (TestMigrationsUnchanged pins its
-- digest): a change to the schema is a new file, numbered next.
--
-- Times are Unix nanoseconds (bigint) read from the host's clock, not the
-- server's, with 0 for "never"; names and keys are text in the "C"
-- collation, so that they compare byte by byte as in every other backend.

CREATE TABLE schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL
);
COMMENT ON TABLE schema_migrations IS 'agenthost pgstore schema history';

-- Record versions and lease tokens are drawn from one sequence, so neither
-- is ever reused and both grow.
CREATE SEQUENCE revision AS bigint;

CREATE TABLE kv (
	ns         text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	value      bytea NOT NULL,
	version    bigint NOT NULL,
	expires_at bigint NOT NULL,
	updated_at bigint NOT NULL,
	PRIMARY KEY (ns, key)
);
CREATE INDEX kv_expiry ON kv (expires_at) WHERE expires_at > 0;

-- One row per log: the index its next entry gets. Appending locks it, which
-- sequences the appends to one log and keeps its indexes gap-free.
CREATE TABLE logs (
	log  text COLLATE "C" PRIMARY KEY,
	next bigint NOT NULL
);

CREATE TABLE log_entries (
	log  text COLLATE "C" NOT NULL,
	idx  bigint NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (log, idx)
);

CREATE TABLE leases (
	name       text COLLATE "C" PRIMARY KEY,
	holder     text COLLATE "C" NOT NULL,
	expires_at bigint NOT NULL,
	token      bigint NOT NULL
);
