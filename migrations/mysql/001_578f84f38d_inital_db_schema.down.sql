-- Revision 578f84f38d down (578f84f38d -> base). Children before their parent, so that
-- enforced foreign keys never object.
DROP TABLE options;
DROP TABLE attributes;
DROP TABLE nodes;
