"""Validation of spec L (Li et al. 2024): theorem checks L13–L17 and figures E1–E7."""
