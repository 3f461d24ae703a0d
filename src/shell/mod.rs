//! The async-std network shell (in progress).
