"""PyTorch implementations of the models (``torch.nn`` + autograd + ``torch.optim``); see
``refimpl.examples``. Importing this package does not import torch; each model file does."""
