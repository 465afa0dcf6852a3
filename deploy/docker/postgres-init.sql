-- One database per service (SPEC §2: each service owns its data).
CREATE DATABASE chainchat_auth;
CREATE DATABASE chainchat_chat;
CREATE DATABASE chainchat_files;
CREATE DATABASE chainchat_ledger;
