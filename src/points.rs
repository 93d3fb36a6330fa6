//! (module `points`: being written)
