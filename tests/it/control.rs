//! The control socket and its CLI through the real binary: `berth run
//! --headless` in a temp dir, clients as separate processes, raw sockets for
//! protocol abuse. (Issue #4.)

mod bounds;
mod commands;
mod depends;
mod errors;
mod fastapi;
mod follow;
mod given;
mod health;
pub mod home;
mod lifecycle;
mod socket;
mod streams;
mod stress;
mod talk;
