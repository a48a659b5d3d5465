//! Hashing and verified exec: berth runs exactly the bytes it hashed.
//!
//! Hashing streams the file through a 64 KiB buffer: constant memory, and
//! (measured, see FACTS.md) faster than a 1 MiB buffer, which loses to cache
//! misses. sha2 picks the CPU's SHA extensions at run time.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::manifest::Digest;

const BUF_SIZE: usize = 64 * 1024;

/// SHA-256 of everything `reader` yields.
pub fn hash_reader(mut reader: impl Read) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Digest(hasher.finalize().into()))
}

/// SHA-256 of the file at `path`.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    hash_reader(File::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hash_reader(&b""[..]).unwrap().to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Longer than one buffer, so the loop runs more than once.
        let data = vec![b'a'; BUF_SIZE * 3 + 7];
        let expected = Sha256::digest(&data);
        assert_eq!(
            hash_reader(&data[..]).unwrap().0,
            <[u8; 32]>::from(expected)
        );
    }
}
