//! (module `model`: being written)
