"""cmtheory: a numerical laboratory for the convergence theory of diffusion samplers and consistency models."""

__version__ = "0.1.0"
