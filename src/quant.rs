//! (module `quant`: being written)
