//! Updates (v3, DESIGN.md "Updates"): a backend's signed releases, fetched
//! from a feed and installed whole.
//!
//! - [`fetch`]: the HTTP(S) client: small signed files read whole up to a
//!   bound, artifacts downloaded into a path with their size and digest
//!   checked, 30 s without progress ends a transfer.

pub mod fetch;
