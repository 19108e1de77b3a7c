//! HCS JSON documents (schema v1 and v2) with serde; no OS code.
