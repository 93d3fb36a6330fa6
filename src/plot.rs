//! (module `plot`: being written)
