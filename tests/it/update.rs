//! Updates (issue #27) through the real binary: `berth release` writes a
//! folder that a client can trust file by file, and `berth update ID
//! --check` reads it from a real web server; the running launcher's
//! `check-update` and `update` install it.

mod check;
pub mod feed;
mod installed;
mod kills;
mod launcher;
pub mod probation;
mod refusals;
pub mod release;
mod timer;
mod verbs;
