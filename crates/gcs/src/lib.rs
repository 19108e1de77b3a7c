//! The Linux guest compute service (GCS): bridge server that runs containers with an OCI runtime.
