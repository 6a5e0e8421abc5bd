"""Benchmarks: what warm-starting saves, the training loop against bare torch, orchestration overhead."""
