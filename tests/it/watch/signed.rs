//! Signature files hot-reload with their manifests (issue #15, point 3): a
//! signature appearing, changing or vanishing re-judges its manifest; a
//! manifest and its signature replaced together (two renames within the
//! debounce, in either order) never show a spurious untrusted state or
//! error; an edit that breaks a running backend's signature keeps it
//! running on its signed definition.

use berth::verb::Verb;
use std::path::Path;
use std::sync::Arc;

use berth::status::{Snapshot, State};
use berth::trust::{Policy, Trust};

use super::{Fx, exe, manifest};
use crate::util;

/// A key pair; its public half is the only trusted key, signatures required.
fn keys(dir: &Path) -> (minisign::SecretKey, Arc<Trust>) {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let trusted = dir.join("trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::write(
        trusted.join("acme.pub"),
        pair.pk.to_box().unwrap().to_string(),
    )
    .unwrap();
    let trust = Trust::load(Policy {
        require: true,
        dirs: vec![trusted],
    });
    assert_eq!(trust.key_names().collect::<Vec<_>>(), ["acme"]);
    (pair.sk, Arc::new(trust))
}

fn signature(sk: &minisign::SecretKey, text: &str) -> String {
    minisign::sign(None, sk, text.as_bytes(), None, None)
        .unwrap()
        .to_string()
}

fn a_is_disturbed(s: &Snapshot) -> bool {
    s.get("a")
        .is_none_or(|a| a.state != State::Running || a.error.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_and_its_signature_replaced_together_never_look_untrusted() {
    let env = util::env();
    let dir = env.path().join("backends");
    std::fs::create_dir_all(&dir).unwrap();
    let (sk, trust) = keys(env.path());
    let bin = exe(env.path(), "a");
    let text = manifest("a", "1.0.0", &bin, "");
    std::fs::write(dir.join("a.yaml"), &text).unwrap();
    std::fs::write(dir.join("a.yaml.minisig"), signature(&sk, &text)).unwrap();
    let fx = Fx::start_with(env, dir.clone(), trust).await;
    let pid = fx.start_running("a").await;
    assert_eq!(
        fx.sup().snapshot().get("a").unwrap().signed_by.as_deref(),
        Some("acme")
    );

    for i in 1..=8 {
        fx.mark().await;
        let version = format!("1.0.{i}");
        let text = manifest("a", &version, &bin, "");
        std::fs::write(dir.join(".a.yaml.new"), &text).unwrap();
        std::fs::write(dir.join(".a.sig.new"), signature(&sk, &text)).unwrap();
        // Both orders: the manifest first, or the signature first.
        let renames = [
            (dir.join(".a.yaml.new"), dir.join("a.yaml")),
            (dir.join(".a.sig.new"), dir.join("a.yaml.minisig")),
        ];
        let order: Vec<_> = if i % 2 == 0 {
            renames.iter().collect()
        } else {
            renames.iter().rev().collect()
        };
        for (from, to) in order {
            std::fs::rename(from, to).unwrap();
        }
        fx.wait("the new signed version", |s| {
            s.get("a")
                .is_some_and(|a| a.version.as_deref() == Some(&version) && a.pending_restart)
        })
        .await;
        fx.assert_never("a spurious untrusted or error state", a_is_disturbed);
    }
    assert_eq!(fx.pid("a"), Some(pid), "a was restarted");

    // An edit that breaks the signature: still running, the error shown, the
    // last signed definition kept (no new pending restart for the edit).
    let before = fx.sup().snapshot().get("a").unwrap().version.clone();
    let mut broken = std::fs::read_to_string(dir.join("a.yaml")).unwrap();
    broken = broken.replace("version: 1.0.8", "version: 9.9.9");
    fx.write("a.yaml", &broken);
    let snap = fx
        .wait("the signature error", |s| {
            s.get("a")
                .and_then(|a| a.error.as_deref())
                .is_some_and(|e| e.contains("does not match a.yaml"))
        })
        .await;
    let a = snap.get("a").unwrap();
    assert_eq!(
        (a.state, a.pid, &a.version),
        (State::Running, Some(pid), &before)
    );
    assert_eq!(a.signed_by.as_deref(), Some("acme"));

    // The signature vanishing (for a fresh, never-signed file): untrusted,
    // listed with its reason; the signature appearing: trusted.
    let bin_b = exe(fx.env.path(), "b");
    let text_b = manifest("b", "1.0.0", &bin_b, "");
    fx.write("b.yaml", &text_b);
    fx.wait("b untrusted", |s| {
        s.get("b").is_some_and(|b| {
            b.state == State::Untrusted
                && b.error.as_deref().is_some_and(|e| e.contains("not signed"))
        })
    })
    .await;
    assert!(
        fx.sup().command("b", Verb::start()).await.is_err(),
        "an untrusted backend started"
    );
    fx.write("b.yaml.minisig", &signature(&sk, &text_b));
    fx.wait("b signed", |s| {
        s.get("b").is_some_and(|b| {
            b.state == State::Stopped && b.error.is_none() && b.signed_by.as_deref() == Some("acme")
        })
    })
    .await;
    std::fs::remove_file(fx.dir.join("b.yaml.minisig")).unwrap();
    fx.wait("b's signature gone", |s| {
        s.get("b")
            .and_then(|b| b.error.as_deref())
            .is_some_and(|e| e.contains("not signed"))
    })
    .await;
    fx.finish().await;
}
