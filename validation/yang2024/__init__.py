"""Spec Y validation: Y10–Y14 on small instances and Figs. 3 (theorems.py); Figs. 2(a), 4 (figures.py)."""
