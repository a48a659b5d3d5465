//! The documented, versioned control protocol (issue #24, point 6): the
//! checked-in schemas are the generated ones, they are not vacuous, every
//! reply the other tests read is checked against them ([`check`]), recorded
//! replies of protocol 1 stay valid, and `version` answers.

pub mod check;
mod recorded;
mod schemas;
mod version;
