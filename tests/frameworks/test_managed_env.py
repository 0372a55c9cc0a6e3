"""Every variable berth computes per pod is one the spec refuses to set by hand (berth.contract.MANAGED_ENV)."""

from __future__ import annotations

import pytest

from berth.contract import MANAGED_ENV
from berth.rendezvous import Framework, RendezvousParams


@pytest.mark.parametrize("framework", list(Framework))
@pytest.mark.parametrize("gpus", [0, 2])
def test_env_for_exports_only_managed_names(framework: Framework, gpus: int) -> None:
    params = RendezvousParams(framework, "t", "s", "ns", "cluster.local", 2222, 3, gpus)
    for ordinal in range(3):
        assert set(params.env_for(ordinal)) - MANAGED_ENV == set()
