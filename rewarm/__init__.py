"""rewarm: continual retraining with shrink-and-perturb warm starts."""

__version__ = "0.1.0"
