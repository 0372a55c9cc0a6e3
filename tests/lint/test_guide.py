"""berth lint on the guide's own manifests finds the guide's own mistakes (the reason berth exists)."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import berth_process

GUIDE = Path(__file__).parent / "data" / "guide-manifests.yaml"


def test_guide_manifests_fail_with_the_guides_bugs_located() -> None:
    out = berth_process("lint", str(GUIDE), "--format", "json")
    assert out.returncode == 1, out.stderr
    findings = json.loads(out.stdout)  # the json format is one list of finding objects
    assert isinstance(findings, list)
    by_rule = {f["rule"]: f for f in findings}
    # Every worker claims index 0: the bug berth's rendezvous preamble exists to fix.
    tf = by_rule["constant-rank-env"]
    assert (tf["severity"], tf["line"], tf["kind"], tf["name"]) == ("error", 44, "StatefulSet", "ml-training")
    # Peers cannot resolve each other before they are Ready, and OrderedReady deadlocks rendezvous.
    assert {"headless-service-not-ready-addresses", "ordered-ready-rendezvous"} <= set(by_rule)
    # "Scaling down doesn't delete PVCs automatically": the retention policy is missing.
    assert by_rule["pvc-retention-policy-missing"]["line"] == 69
    # The PDB blocks drains while a pod is unhealthy; the gp3 class uses the removed in-tree plugin name.
    assert {"pdb-unhealthy-eviction-policy", "in-tree-provisioner"} <= set(by_rule)
    # Its gp3 parameters are within AWS's limits and the class binds late: no false alarms there.
    assert not {"storageclass-invalid-parameters", "storageclass-immediate-binding"} & set(by_rule)
