"""Train, evaluate, gate and promote a model, operated through Git."""
