"""Library of the W-DUALMINE Slicer module, split by role (see the module file WDualMine.py)."""
