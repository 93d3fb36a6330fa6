//! (module `train`: being written)
