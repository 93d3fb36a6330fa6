//! (module `prune`: being written)
