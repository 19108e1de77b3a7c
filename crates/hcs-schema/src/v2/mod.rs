//! Schema 2.x documents.
