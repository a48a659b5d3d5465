//! The system tray: a pure menu model of a snapshot, and a thin adapter. (Issue #7.)
