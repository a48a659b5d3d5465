//! Updates (issue #27) through the real binary: `berth release` writes a
//! folder that a client can trust file by file.

mod release;
