"""Training, benchmark and baseline tooling around the W-DUALMINE bundle (not part of the bundle itself)."""
