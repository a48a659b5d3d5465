//! `{"cmd": "version"}` over the real socket.

use crate::control::home::{Home, raw};

#[test]
fn version_answers_the_crate_version_and_protocol_1() {
    let home = Home::new();
    let _launcher = home.launch();
    let reply = raw(&home.socket(), b"{\"cmd\":\"version\"}\n");
    assert_eq!(
        reply,
        serde_json::json!({
            "ok": true,
            "data": { "berth": env!("CARGO_PKG_VERSION"), "protocol": 1 }
        })
    );
    let extra = raw(&home.socket(), b"{\"cmd\":\"version\",\"id\":\"x\"}\n");
    assert_eq!(extra["ok"], false);
    assert_eq!(
        extra["error"],
        "bad \"version\" request: unknown field `id`"
    );
}
