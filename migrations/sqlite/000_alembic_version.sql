-- Alembic's bookkeeping table, created before the first revision runs. One row holds the
-- current revision; none means "base". Same shape as alembic writes it, so either tool can
-- carry on from the other.
CREATE TABLE IF NOT EXISTS alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
