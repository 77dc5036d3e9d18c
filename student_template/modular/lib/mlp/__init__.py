"""Multi-layer perceptron building blocks: layers, networks and the training loop."""
