"""Bundle-local Python for the W-DUALMINE MONAI bundle (network, losses, transforms, data, volume fusion).

This package is self-contained: it imports nothing from ``training/`` or ``WDualMineExtension/``.
"""
