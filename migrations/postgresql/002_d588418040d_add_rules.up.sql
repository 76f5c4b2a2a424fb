-- Revision d588418040d (578f84f38d -> d588418040d): introspection rules with their
-- conditions and actions. Never edit once merged; add a new revision instead.
-- SERIAL gives the integer ids their sequence, as an autoincrementing primary key does.
CREATE TABLE rules (
	uuid VARCHAR(36) NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	description TEXT,
	disabled BOOLEAN,
	PRIMARY KEY (uuid)
);

CREATE TABLE rule_conditions (
	id SERIAL NOT NULL,
	rule VARCHAR(36),
	op VARCHAR(255) NOT NULL,
	multiple VARCHAR(255) NOT NULL,
	field TEXT,
	params TEXT,
	PRIMARY KEY (id),
	FOREIGN KEY(rule) REFERENCES rules (uuid)
);

CREATE TABLE rule_actions (
	id SERIAL NOT NULL,
	rule VARCHAR(36),
	action VARCHAR(255) NOT NULL,
	params TEXT,
	PRIMARY KEY (id),
	FOREIGN KEY(rule) REFERENCES rules (uuid)
);
