INSERT INTO widgets (label) VALUES (E'tab\there');
INSERT INTO widgets DEFAULT VALUES;
