-- Revision d588418040d down (d588418040d -> 578f84f38d). Children before their parent.
DROP TABLE rule_actions;
DROP TABLE rule_conditions;
DROP TABLE rules;
