"""Training infrastructure shared by every trainer: distributed set-up, checkpoints, EMA, logging."""
