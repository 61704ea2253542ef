r"""Small networks for consistency models: an MLP with a time embedding and the two skip
parameterisations used in the papers.

* :class:`EDMConsistency` (Song et al. 2023; EDM variables :math:`y = X_0 + \sigma Z`):

  .. math::
      f_\theta(y, \sigma) = c_{skip}(\sigma)\,y + c_{out}(\sigma)\,F_\theta\big(c_{in}(\sigma)\,y, \tfrac14\log\sigma\big),

  :math:`c_{skip} = \sigma_d^2/((\sigma-\sigma_{min})^2 + \sigma_d^2)`,
  :math:`c_{out} = (\sigma-\sigma_{min})\sigma_d/\sqrt{\sigma^2+\sigma_d^2}`,
  :math:`c_{in} = 1/\sqrt{\sigma^2+\sigma_d^2}`, so :math:`f_\theta(y, \sigma_{min}) = y` exactly.
* :class:`TrigFlowConsistency` (Lu & Song 2024; :math:`x_t = \cos t\,X_0 + \sin t\,Z`,
  :math:`Z \sim N(0, \sigma_d^2 I)`):

  .. math:: f_\theta(x, t) = \cos t\,x - \sin t\,\sigma_d F_\theta(x/\sigma_d, t),

  so :math:`f_\theta(x, 0) = x`.

Parameters are initialised from an explicit ``torch.Generator`` (PyTorch's default
Linear initialisation, uniform on :math:`\pm 1/\sqrt{\text{fan-in}}`), so a seed fixes the
network.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cmtheory._checks import check_positive, check_positive_int

__all__ = ["time_embedding", "TimeMLP", "EDMConsistency", "TrigFlowConsistency", "init_parameters_"]


def time_embedding(c: torch.Tensor, frequencies: int) -> torch.Tensor:
    r"""Features :math:`(c, \sin(2^k c), \cos(2^k c))_{k < K}` of a per-sample time ``c`` of shape (n,)."""
    w = 2.0 ** torch.arange(frequencies, dtype=c.dtype, device=c.device)
    a = c[:, None] * w
    return torch.cat([c[:, None], torch.sin(a), torch.cos(a)], dim=1)


def init_parameters_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    r"""Re-initialise every Linear layer, weights and biases uniform on :math:`\pm 1/\sqrt{\text{fan-in}}`."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)
    return module


class TimeMLP(nn.Module):
    r""":math:`F_\theta(x, c)`: an MLP on the concatenation of ``x`` (n, d) and the embedding of ``c`` (n,).

    Parameters
    ----------
    d : int
        Data dimension (input and output).
    width, depth : int
        Hidden width and number of hidden layers (SiLU activations).
    frequencies : int
        Number of sinusoidal frequencies in the time embedding.
    generator : torch.Generator
        Source of the initial parameters.
    """

    def __init__(self, d: int, width: int = 128, depth: int = 3, frequencies: int = 6, generator: torch.Generator | None = None):
        super().__init__()
        for v, name in ((d, "d"), (width, "width"), (depth, "depth"), (frequencies, "frequencies")):
            check_positive_int(v, name)
        self.d, self.frequencies = d, frequencies
        sizes = [d + 2 * frequencies + 1] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        layers.append(nn.Linear(width, d))
        self.net = nn.Sequential(*layers)
        init_parameters_(self, generator if generator is not None else torch.Generator().manual_seed(0))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, time_embedding(c, self.frequencies)], dim=1))


def _per_sample(value, x: torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"{name} must be a scalar or a tensor of shape ({x.shape[0]},), got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t


class EDMConsistency(nn.Module):
    r"""Consistency function :math:`f_\theta(y, \sigma)` in EDM variables with the boundary
    condition :math:`f_\theta(y, \sigma_{min}) = y` built in (see the module docstring).

    Parameters
    ----------
    F : TimeMLP
        The free-form network.
    sigma_min : float
        Smallest noise level (the boundary).
    sigma_data : float
        Data standard deviation in :math:`c_{skip}, c_{out}, c_{in}`.
    """

    def __init__(self, F: TimeMLP, sigma_min: float, sigma_data: float):
        super().__init__()
        self.F = F
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_data = check_positive(sigma_data, "sigma_data")

    def forward(self, y: torch.Tensor, sigma) -> torch.Tensor:
        s = _per_sample(sigma, y, "sigma")
        if (s < self.sigma_min).any():
            raise ValueError(f"sigma must be >= sigma_min = {self.sigma_min}, got min {s.min().item():.3g}")
        sd2 = self.sigma_data**2
        c_skip = sd2 / ((s - self.sigma_min) ** 2 + sd2)
        c_out = (s - self.sigma_min) * self.sigma_data / torch.sqrt(s**2 + sd2)
        c_in = 1 / torch.sqrt(s**2 + sd2)
        return c_skip[:, None] * y + c_out[:, None] * self.F(c_in[:, None] * y, torch.log(s) / 4)


class TrigFlowConsistency(nn.Module):
    r""":math:`f_\theta(x, t) = \cos t\,x - \sin t\,\sigma_d F_\theta(x/\sigma_d, t)`, t in [0, pi/2].

    Parameters
    ----------
    F : TimeMLP
        The free-form network, called as ``F(x / sigma_d, t)``.
    sigma_data : float
        :math:`\sigma_d`, the TrigFlow noise scale (0.5 in the paper).
    """

    def __init__(self, F: TimeMLP, sigma_data: float = 0.5):
        super().__init__()
        self.F = F
        self.sigma_data = check_positive(sigma_data, "sigma_data")

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = _per_sample(t, x, "t")
        if ((t < 0) | (t > math.pi / 2)).any():
            raise ValueError("t must lie in [0, pi/2]")
        return torch.cos(t)[:, None] * x - torch.sin(t)[:, None] * self.sigma_data * self.F(x / self.sigma_data, t)
