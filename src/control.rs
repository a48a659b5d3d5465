//! The control socket: one JSON request per line, one JSON reply per line.
//!
//! The launcher serves it ([`server`]); `berth status/start/stop/restart`
//! and programs are its clients ([`crate::client`]). [`socket`] owns the file itself: folder
//! permissions, stale sockets, path length. [`protocol`] is the wire format,
//! shared by both sides; [`schema`] publishes it as JSON Schemas.
//! [`backends`] is what the server asks of the supervisor. `watch_stream`
//! turns a connection into the stream of status changes (v3), `log_stream`
//! into a backend's output (v3), each streaming client with its own
//! `outbox`.

mod admit;
pub mod backends;
pub mod idle;
mod log_stream;
mod outbox;
pub mod protocol;
pub mod schema;
pub mod server;
pub mod socket;
pub mod talk;
mod unique_keys;
mod watch_stream;

pub use protocol::{Reply, Request};
pub use server::{Backends, ClientLimits, Rescans, serve};
