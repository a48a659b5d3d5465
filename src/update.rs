//! Updates (v3, DESIGN.md "Updates"): a backend's signed releases, published
//! as static files and installed whole.
//!
//! What lives where:
//!
//! - [`feed`]: the format of a release folder (`index.json`, its signature,
//!   one folder per release) that `berth release` writes and `berth update`
//!   reads; what a client checks in it before trusting a byte.
//! - [`check`]: what a backend's feed offers, read only through signatures
//!   by trusted keys.
//! - [`install`]: the updates folder: versions made visible whole by one
//!   rename, the previous one kept, what a crash left cleaned up.
//! - [`stage`]: one release downloaded into a staging folder and verified
//!   (signatures, id, version, sizes, digests) before it may be published.
//! - `cli/release.rs`: `berth release`, the publisher's side.
//! - [`fetch`]: the HTTP(S) client: small signed files read whole up to a
//!   bound, artifacts downloaded into a path with their size and digest
//!   checked, 30 s without progress ends a transfer; [`network`]: it as
//!   `check` and `stage` read the network.
//! - [`apply`]: one check or update start to end (check, stage, publish),
//!   run by the launcher's job of the id, or by `berth update` without one.
//! - [`pause`]: debug builds' hooks where a test kills berth mid-update.

pub mod apply;
pub mod check;
pub mod feed;
pub mod fetch;
pub mod install;
pub mod network;
pub mod pause;
pub mod stage;
