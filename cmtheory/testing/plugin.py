"""cmtheory's pytest plugin (entry point ``pytest11``: active wherever cmtheory is installed).

Fixtures, each prefixed ``cmtheory_`` so as not to shadow a suite's own:

* ``cmtheory_seed``: the seed, 0 unless ``pytest --cmtheory-seed N``;
* ``cmtheory_generator``: a :class:`torch.Generator` seeded with it (CPU);
* ``cmtheory_rng``: a :class:`numpy.random.Generator` seeded with it;
* ``cmtheory_gmm_1d``: the 1-D two-component mixture 0.4 N(-1, 0.25) + 0.6 N(1, 0.16) that
  cmtheory's own rate checks use;
* ``cmtheory_gaussian``: a factory ``d -> N(0, diag(0.5..2))`` in d dimensions (a one-component
  :class:`~cmtheory.targets.GaussianMixture`, whose every law is Gaussian and exact);
* ``cmtheory_exact_tv_rate``: :func:`cmtheory.testing.exact_tv_rate`;
* ``cmtheory_sampler_rate``: :func:`cmtheory.testing.sampler_rate` (a name, a spec or a function;
  in T or in d; exact or Monte Carlo).

cmtheory is imported by the fixtures, not when pytest starts, so suites that do not use them pay
nothing.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--cmtheory-seed", type=int, default=0, help="seed of cmtheory's seeded fixtures (default 0)")


@pytest.fixture
def cmtheory_seed(request) -> int:
    return request.config.getoption("--cmtheory-seed")


@pytest.fixture
def cmtheory_generator(cmtheory_seed):
    import torch

    return torch.Generator().manual_seed(cmtheory_seed)


@pytest.fixture
def cmtheory_rng(cmtheory_seed):
    import numpy as np

    return np.random.default_rng(cmtheory_seed)


@pytest.fixture
def cmtheory_gmm_1d():
    from cmtheory.targets import GaussianMixture

    return GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.25, 0.16])


@pytest.fixture
def cmtheory_gaussian():
    import numpy as np

    from cmtheory.targets import GaussianMixture

    def gaussian(d: int):
        if int(d) != d or d < 1:
            raise ValueError(f"d must be a positive integer, got {d!r}")
        return GaussianMixture([1.0], [[0.0] * int(d)], [np.diag(np.geomspace(0.5, 2.0, int(d))).tolist()])

    return gaussian


@pytest.fixture
def cmtheory_exact_tv_rate():
    from cmtheory.testing import exact_tv_rate

    return exact_tv_rate


@pytest.fixture
def cmtheory_sampler_rate():
    """:func:`cmtheory.testing.sampler_rate`: the error rate in T or d of a registered name, a
    SamplerSpec or a deterministic function, exact where the spec allows, Monte Carlo otherwise."""
    from cmtheory.testing import sampler_rate

    return sampler_rate
