"""Runs: the run record, its store, the runner that fills it, and everything that reads, checks,
merges or carries it (verify, recheck, bundles)."""
