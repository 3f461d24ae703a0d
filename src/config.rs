//! Flags and config file (in progress).
