//! (module `report`: being written)
