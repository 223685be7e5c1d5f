"""Robustness: the rows that fail, re-checked under other [C] settings (docs/robustness.md).

Opt-in, never part of a default ``refimpl validate``: ``refimpl validate --paper robustness
--profile quick|full --out DIR`` (``--workers N`` runs the grid on Dask) merges a "robustness"
section into DIR's report, beside the verdict rows, which stay as they are.

One module per failing claim (or group of claims measured on the same runs). Each sweeps the
choices refimpl made where the paper is silent ([C] in the docs: step sizes, initialisation, the
data model's free constants, training length, the deep model's width and schedule) over a
documented, plausible range, several seeds per setting, and judges every setting by the claim's
own check with its own threshold (thresholds written before the data are never moved here). A
setting where the claim holds is a finding; so is a claim that fails under every setting.

"The exploratory run" in the modules' comments and reasons is the first pass over these grids,
made with standalone scripts at commit f200092 (the same model code) before this group existed;
the settings and compute estimates were taken from it, and the rows here recompute everything.
"""
