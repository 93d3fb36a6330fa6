//! (module `he`: being written)
