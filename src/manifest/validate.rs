//! RawManifest -> Backend. (Issue #2 fills this in.)
use super::{Backend, ManifestError};
use std::path::Path;

pub fn load(file: &Path, _resources: &Path) -> Result<Backend, ManifestError> {
    todo!("manifest::validate::load {}", file.display())
}
