//! The FastAPI example (`examples/python-fastapi/`, issue #25, point 5),
//! frozen by its build.sh, run under the real launcher with its own
//! manifest: ready, healthy through the token header, and its API refusing
//! a request without the token.

use std::time::Duration;

use super::given::get;
use super::home::{Home, wait_until};

#[test]
fn fastapi_example_is_ready_healthy_and_refuses_requests_without_the_token() {
    // Built by scripts/test.sh, which sets BERTH_REQUIRE_EXAMPLE=1 so CI
    // never skips it; a worktree that has not built it skips, saying so.
    let exe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python-fastapi/dist/app");
    if !exe.is_file() {
        assert_ne!(
            std::env::var("BERTH_REQUIRE_EXAMPLE").as_deref(),
            Ok("1"),
            "{} is missing: run examples/python-fastapi/build.sh",
            exe.display()
        );
        eprintln!(
            "skipped: {} is not built (examples/python-fastapi/build.sh)",
            exe.display()
        );
        return;
    }
    let home = Home::new();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/python-fastapi/backend.yaml"),
    )
    .unwrap();
    let digest = berth::integrity::hash_file(&exe).unwrap().to_string();
    // The shipped manifest, with the real digest and a check every 500 ms
    // rather than 10 s.
    let manifest = shipped
        .replace("path: dist/app", &format!("path: {}", exe.display()))
        .replace(&"0".repeat(64), &digest)
        .replace("interval: 10s", "interval: 500ms");
    std::fs::write(home.backends().join("fastapi.yaml"), manifest).unwrap();
    let _l = home.launch();
    let out = home.run(&["start", "fastapi"]);
    assert_eq!(
        out.code(),
        0,
        "{out:?}\n{:?}",
        std::fs::read_to_string(home.log("fastapi"))
    );
    let status = home.status_of("fastapi");
    assert_eq!(status["ready_json"]["status"], "ready", "{status}");
    let port = status["port"].as_u64().unwrap() as u16;
    assert_eq!(status["ready_json"]["port"], port, "{status}");
    let token = status["token"].as_str().unwrap().to_owned();
    assert!(
        wait_until(
            Duration::from_secs(30),
            || home.status_of("fastapi")["healthy"] == true
        ),
        "never healthy: {}",
        home.status_of("fastapi")
    );
    assert_eq!(get(port, "/api/status", None), 401);
    assert_eq!(get(port, "/api/status", Some("Bearer nope")), 401);
    assert_eq!(
        get(port, "/api/status", Some(&format!("Bearer {token}"))),
        200
    );
    let out = home.run(&["stop", "fastapi"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let log = std::fs::read_to_string(home.log("fastapi")).unwrap();
    assert!(log.contains("stdout {\"status\": \"stopped\"}"), "{log}");
    assert!(!log.contains(&token), "the token is in the backend's log");
}
