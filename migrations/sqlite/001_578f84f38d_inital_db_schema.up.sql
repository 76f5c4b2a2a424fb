-- Revision 578f84f38d (base -> 578f84f38d): nodes under introspection, their lookup
-- attributes and their options. Never edit once merged; add a new revision instead.
CREATE TABLE nodes (
	uuid VARCHAR(36) NOT NULL,
	started_at FLOAT,
	finished_at FLOAT,
	error TEXT,
	PRIMARY KEY (uuid)
);

CREATE TABLE attributes (
	name VARCHAR(255) NOT NULL,
	value VARCHAR(255) NOT NULL,
	uuid VARCHAR(36),
	PRIMARY KEY (name, value),
	FOREIGN KEY(uuid) REFERENCES nodes (uuid)
);

CREATE TABLE options (
	uuid VARCHAR(36) NOT NULL,
	name VARCHAR(255) NOT NULL,
	value TEXT,
	PRIMARY KEY (uuid, name),
	FOREIGN KEY(uuid) REFERENCES nodes (uuid)
);
