//! HCS error model (HRESULTs, wrappers, predicates), container/process traits and the Win32 HCS backend.
