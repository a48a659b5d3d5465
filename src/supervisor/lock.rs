//! How the supervisor takes its locks; a leaf, so that what `shared` holds
//! (the board, the log feeds) can lock without importing `shared` back.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The supervisor's locks guard data that stays consistent field by field
/// if a panic interrupts a writer, so poisoning is ignored. Lock order: the
/// handle's jobs, then the board.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
