"""runhistory's benchmark suite: every figure measured beside its anchor, in the same run."""
