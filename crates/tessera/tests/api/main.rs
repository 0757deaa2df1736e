//! Black-box tests of the HTTP API: each test starts the real `tessera`
//! binary on a fresh database (SQLite, and PostgreSQL when
//! `TESSERA_TEST_POSTGRES_URL` is set) and talks to it over HTTP.

mod helpers;

mod access;
mod audit;
mod audit_sinks;
mod backends;
mod clients;
mod configs;
mod connect;
mod connections;
mod console;
mod console_sessions;
mod crash;
mod credentials;
mod denials;
mod health;
mod imports;
mod incarnations;
mod keys;
mod oauth;
mod observability;
mod openapi;
mod postgres_tls;
mod proxy;
mod read_audit;
mod readme;
mod scopes;
mod secrets;
mod service;
mod shutdown;
mod tenants;
mod tls;
mod tools;
mod vault_api;
mod vault_auth;
mod view_cache;
mod webhooks;
mod writes;
