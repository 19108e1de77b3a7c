//! The LCOW GCS bridge wire protocol: header, message types, payloads and codec.
