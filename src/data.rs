//! (module `data`: being written)
