"""Prediction heads on top of the VGGT aggregator (camera, DPT depth, DPT Gaussian parameters)."""
