//! Live migration options.
