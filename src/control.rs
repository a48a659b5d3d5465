//! The control socket: one JSON request per line, one JSON reply per line. (Issue #4.)
