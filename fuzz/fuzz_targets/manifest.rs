//! Arbitrary bytes through manifest parsing and validation, and through the
//! digest locator `berth pin` uses. Nothing may panic, overflow the stack or
//! take unbounded time, and every error must stay one line.

#![no_main]

use std::path::Path;

use berth::manifest::locate;
use berth::manifest::platform::Platform;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = Path::new("backends/fuzz.yaml");
    let resources = &berth::manifest::Places::from(std::path::PathBuf::from("/opt/berth/resources"));
    if let Err(e) = berth::manifest::parse(file, data, resources) {
        let line = e.to_string();
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    }
    let platform = Platform::current();
    if let Ok(Some(span)) = std::str::from_utf8(data).map(|t| locate::digest_span(t, platform)).unwrap_or(Ok(None)) {
        // The span must be a valid range on char boundaries of the text.
        let text = std::str::from_utf8(data).unwrap_or_default();
        assert!(text.get(span.range.clone()).is_some(), "{span:?}");
    }
    let _ = locate::parse_pinnable(file, data, resources, platform);
});
