"""Reference solution of the `modular` assignment (layers, networks and optimizers)."""
