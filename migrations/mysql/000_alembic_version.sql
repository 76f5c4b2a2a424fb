-- Alembic's bookkeeping table, created before the first revision runs. One row holds the
-- current revision; none means "base". Alembic gives it no table options, so it takes the
-- server's defaults.
CREATE TABLE IF NOT EXISTS alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
