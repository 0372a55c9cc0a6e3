"""The full-volume alerts select every claim of the cluster: per-replica ones and the shared ones.

The selector is a PromQL ``=~`` (RE2, anchored at both ends by Prometheus); the alternatives used
here (``.*``, ``[0-9]+``, ``|``, ``\\.``) mean the same in Python's ``re``, which stands in for RE2.
"""

from __future__ import annotations

import re

from berth.render.monitoring import monitoring
from berth.spec.model import TrainingCluster

from .conftest import Rendered


def _selectors(objects: list[dict[str, object]]) -> dict[str, str]:
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    rules = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}  # type: ignore[index]
    out = {}
    for alert in ("BerthVolumeFillingUp", "BerthVolumeAlmostFull", "BerthClaimPending"):
        (pattern,) = set(re.findall(r'persistentvolumeclaim=~"((?:[^"\\]|\\.)*)"', rules[alert]))
        out[alert] = pattern.replace("\\\\", "\\")  # the PromQL string literal's own escaping
    return out


def test_alerts_cover_shared_claims(examples: dict[str, Rendered]) -> None:
    covered = 0
    for r in examples.values():
        if not r.spec.spec.monitoring.alerts or not r.spec.spec.monitoring.prometheus:
            continue
        for pattern in _selectors(r.objects).values():
            assert re.fullmatch(pattern, f"ckpt-{r.spec.name}-0") and re.fullmatch(pattern, f"model-{r.spec.name}-12")
            assert not re.fullmatch(pattern, f"ckpt-other-{r.spec.name}x-0")
            assert not re.fullmatch(pattern, "some-unrelated-claim")
            for sv in r.spec.spec.shared_volumes.values():
                assert re.fullmatch(pattern, sv.claim_name), (r.name, sv.claim_name)
                covered += 1
    assert covered >= 3  # the examples do have shared volumes with alerts


def test_dots_in_a_shared_claim_name_are_literal(examples: dict[str, Rendered]) -> None:
    base = next(r for r in examples.values() if r.spec.spec.shared_volumes and r.spec.spec.monitoring.alerts)
    doc = base.spec.model_dump(by_alias=True, exclude_none=True)
    (first,) = list(doc["spec"]["sharedVolumes"])[:1]
    doc["spec"]["sharedVolumes"][first]["claimName"] = "corpus.v2"
    spec = TrainingCluster.model_validate(doc)
    pattern = _selectors(monitoring(spec))["BerthVolumeFillingUp"]
    assert re.fullmatch(pattern, "corpus.v2") and not re.fullmatch(pattern, "corpusXv2")
