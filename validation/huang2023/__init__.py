"""Validation of spec H (Huang, Cheng, Liang 2023): invariants H9, golden H10, phases H11–H12 and
the phase figure H13."""
