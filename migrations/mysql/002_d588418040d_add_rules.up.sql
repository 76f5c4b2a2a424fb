-- Revision d588418040d (578f84f38d -> d588418040d): introspection rules with their
-- conditions and actions. Never edit once merged; add a new revision instead.
CREATE TABLE rules (
	uuid VARCHAR(36) NOT NULL,
	created_at DATETIME NOT NULL,
	description TEXT,
	disabled BOOL,
	PRIMARY KEY (uuid)
)ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE rule_conditions (
	id INTEGER NOT NULL AUTO_INCREMENT,
	rule VARCHAR(36),
	op VARCHAR(255) NOT NULL,
	multiple VARCHAR(255) NOT NULL,
	field TEXT,
	params TEXT,
	PRIMARY KEY (id),
	FOREIGN KEY(rule) REFERENCES rules (uuid)
)ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE rule_actions (
	id INTEGER NOT NULL AUTO_INCREMENT,
	rule VARCHAR(36),
	action VARCHAR(255) NOT NULL,
	params TEXT,
	PRIMARY KEY (id),
	FOREIGN KEY(rule) REFERENCES rules (uuid)
)ENGINE=InnoDB DEFAULT CHARSET=utf8;
