//! The manifest exactly as written: serde + schemars types. (Issue #2 fills this in.)
