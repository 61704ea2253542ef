"""Quick demonstration: exact noisy scores of every target, checked against autograd.

Run: python -m cmtheory.demo
"""

from __future__ import annotations

import torch

from cmtheory.targets import Empirical, GaussianMixture, ProductMixture, Sphere, Subspace


def main() -> None:
    g = torch.Generator().manual_seed(0)
    targets = {
        "GaussianMixture (8 modes, d=2)": GaussianMixture(
            torch.full((8,), 1 / 8, dtype=torch.float64),
            torch.stack([torch.cos(torch.arange(8) * torch.pi / 4), torch.sin(torch.arange(8) * torch.pi / 4)], 1) * 2,
            torch.full((8,), 0.05, dtype=torch.float64),
        ),
        "ProductMixture (d=16)": ProductMixture(16, [0.5, 0.5], [-1.0, 1.0], [0.1, 0.1]),
        "Subspace (k=2 in d=8)": Subspace(8, [1.0], [[0.0, 0.0]], [1.0]),
        "Sphere (S^2 in d=8)": Sphere(8, 3, 1.0),
        "Empirical (100 points, d=4)": Empirical(torch.randn(100, 4, generator=g, dtype=torch.float64)),
    }
    print(f"{'target':32s} {'max |score - grad log p|':>26s}")
    for name, target in targets.items():
        x = target.sample_noisy(256, 0.8, 0.6, generator=g).requires_grad_(True)
        (grad,) = torch.autograd.grad(target.log_prob(x, 0.8, 0.6).sum(), x)
        err = float((target.score(x.detach(), 0.8, 0.6) - grad).abs().max())
        print(f"{name:32s} {err:26.2e}")


if __name__ == "__main__":
    main()
