//! Host-level requests (CPU groups, pause/save, time zone).
