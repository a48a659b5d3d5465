//! Hot reload: notify events on the backends folder become new catalogs. (Issue #6.)
