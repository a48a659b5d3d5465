//! One check or update of a backend from its feed, start to end: the
//! trusted keys and the bad list read, the feed checked, and for an update
//! the offered release staged and published in the updates folder.
//!
//! The launcher's job of the id runs it in a task off its loop
//! (`supervisor/job/update`); `berth update ID` without a launcher runs it
//! under the launcher lock. Either way one writer changes the id's updates.

use semver::Version;
use url::Url;

use super::check::{self, Installed, Offer};
use super::install::Updates;
use super::network::Network;
use super::stage::{self, Wanted};
use crate::manifest::platform::Platform;
use crate::manifest::{BackendId, Places};
use crate::trust::{Policy, Trust};

/// What to do, for which backend.
#[derive(Debug, Clone)]
pub struct Work {
    pub id: BackendId,
    /// The version in force.
    pub installed: Version,
    pub feed: Url,
    pub updates: Updates,
    /// How the release's manifest is read (as the launcher reads manifests).
    pub places: Places,
    /// The trusted key folders; the feed's files are judged by them always.
    pub keys: Policy,
    /// Stage and publish what the feed offers; else only look.
    pub install: bool,
}

/// What the work found.
#[derive(Debug)]
pub struct Report {
    /// What the feed offered, when it could be read and trusted, and that
    /// in words ([`Offer::line`]).
    pub read: Option<(Offer, String)>,
    /// The version published (an update), nothing (a check), or why not,
    /// in one line.
    pub result: Result<Option<Version>, String>,
}

impl Report {
    fn failed(read: Option<(Offer, String)>, why: String) -> Self {
        Self {
            read,
            result: Err(why),
        }
    }
}

/// Carries out `work`; blocking file work runs on blocking threads.
pub async fn run(work: Work) -> Report {
    let (keys, updates, id) = (work.keys.clone(), work.updates.clone(), work.id.clone());
    let read = tokio::task::spawn_blocking(move || (Trust::load(keys), updates.bad(&id))).await;
    let (trust, bad) = match read {
        Ok(read) => read,
        Err(e) => return Report::failed(None, format!("cannot read the trusted keys: {e}")),
    };
    let platform = Platform::current().keys()[0].clone();
    let installed = Installed {
        id: &work.id,
        version: &work.installed,
        bad: &bad,
    };
    let offer = match check::check(installed, &work.feed, &trust, &platform, &Network).await {
        Ok(offer) => offer,
        Err(e) => return Report::failed(None, e.to_string()),
    };
    let line = offer.line(installed, &platform);
    if !work.install {
        return Report {
            read: Some((offer, line)),
            result: Ok(None),
        };
    }
    // Up to date: nothing to do is no failure (exit 0, as `apt-get
    // upgrade` with nothing newer); the line says what the feed has.
    let Offer::Available(release) = &offer else {
        return Report {
            read: Some((offer, line)),
            result: Ok(None),
        };
    };
    let wanted = Wanted {
        id: &work.id,
        installed: &work.installed,
        feed: &work.feed,
        release,
    };
    let staged = stage::stage(&work.updates, wanted, &trust, &work.places, &Network).await;
    let version = release.version.clone();
    let staging = match staged {
        Ok(staging) => staging,
        Err(e) => return Report::failed(Some((offer, line)), e.to_string()),
    };
    let updates = work.updates.clone();
    let published = {
        let version = version.clone();
        tokio::task::spawn_blocking(move || updates.publish(staging, &version)).await
    };
    let read = Some((offer, line));
    match published {
        Ok(Ok(())) => Report {
            read,
            result: Ok(Some(version)),
        },
        Ok(Err(e)) => Report::failed(read, e.to_string()),
        Err(e) => Report::failed(read, format!("publishing failed: {e}")),
    }
}
