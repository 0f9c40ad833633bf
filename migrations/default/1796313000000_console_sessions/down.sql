DROP TABLE IF EXISTS np_console.sessions;
DROP SCHEMA IF EXISTS np_console;
