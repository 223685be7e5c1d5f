"""The papers' experiments that combine packages: deeper models (the spec T transformer) on the data
models of spec Y and spec L. They stand above the model packages (core <- models <- experiments <-
validation), so that the transformer stays a generic model of its own.

Modules: ``adapters`` (spec Y / spec L prompts as token sequences), ``yang_deep`` (Fig. 2(b),
Fig. 5), ``li_deep`` (E1, E2, E7). Nothing is computed at import time.
"""
