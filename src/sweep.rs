//! (module `sweep`: being written)
