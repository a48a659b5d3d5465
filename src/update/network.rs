//! The network as [`check`](super::check) and [`stage`](super::stage) see
//! it: their `Get` and `Download` through the download side ([`super::fetch`])
//! with the contract's limits. The CLI's `--check` and the job's updates
//! both read feeds through it.

use std::path::Path;

use url::Url;

use super::check::Get;
use super::stage::Download;
use crate::manifest::Digest;

/// The real network, bounded as [`super::fetch`] bounds every transfer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Network;

impl Get for Network {
    async fn get(&self, url: &Url, max_bytes: u64) -> Result<Vec<u8>, String> {
        super::fetch::get(url, max_bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Download for Network {
    async fn download(
        &self,
        url: &Url,
        size: u64,
        sha256: &Digest,
        dest: &Path,
    ) -> Result<(), String> {
        super::fetch::download(url, size, sha256, dest)
            .await
            .map_err(|e| e.to_string())
    }
}
