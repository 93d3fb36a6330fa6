//! (module `pareto`: being written)
