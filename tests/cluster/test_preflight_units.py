"""The owner and settings berth reads off a live class, without a cluster (pure functions of the object)."""

from __future__ import annotations

from typing import Any

from berth.contract import ANNOTATION_OWNER
from berth.kube.preflight import Clash, Owner, class_settings


def _class(**fields: Any) -> dict[str, Any]:
    meta = fields.pop("metadata", {"name": "fast-ssd"})
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta, **fields}


def test_owner_from_annotation_then_labels_then_field_managers() -> None:
    managed = [{"manager": "berth", "operation": "Apply"}, {"manager": "kubectl-edit", "operation": "Update"}]
    stamped = Owner.of(_class(metadata={"annotations": {ANNOTATION_OWNER: "team-a/train"}, "managedFields": managed}))
    assert str(stamped) == "berth cluster team-a/train (field managers berth, kubectl-edit)"
    assert stamped.is_cluster("train", "team-a") and not stamped.is_cluster("train", "team-b")

    # Made by a berth that did not stamp classes yet: the instance label, namespace unknown.
    labels = {"app.kubernetes.io/managed-by": "berth", "app.kubernetes.io/instance": "train"}
    legacy = Owner.of(_class(metadata={"labels": labels}))
    assert str(legacy) == "berth cluster train (namespace not recorded; no field manager recorded)"
    assert legacy.is_cluster("train", "team-b") and not legacy.is_cluster("other", "team-a")

    foreign = Owner.of(_class(metadata={"managedFields": [{"manager": "berth-sandbox", "operation": "Apply"}]}))
    assert str(foreign) == "another owner (field manager berth-sandbox)"
    assert not foreign.is_cluster("train", "team-a")


def test_server_defaults_are_no_difference_but_a_default_class_flag_is() -> None:
    rendered = _class(provisioner="ebs.csi.aws.com", volumeBindingMode="Immediate")
    live = _class(provisioner="ebs.csi.aws.com", reclaimPolicy="Delete", volumeBindingMode="Immediate", parameters=None)
    assert class_settings(rendered) == class_settings(live)
    default = _class(
        provisioner="ebs.csi.aws.com",
        metadata={"annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    )
    assert class_settings(default) != class_settings(live)


def test_clash_message_names_both_owners_and_at_most_four_fields() -> None:
    owner = Owner("team-a/train", ("berth",), exact=True)
    fields = [(f"parameters.k{i}", str(i), str(i + 1)) for i in range(6)]
    clash = Clash("StorageClass", "fast-ssd", owner, "team-b/train", fields, immutable=False)
    assert clash.message == (
        "StorageClass fast-ssd belongs to berth cluster team-a/train (field manager berth), with settings other "
        "than team-b/train wants: parameters.k0 '0' → '1', parameters.k1 '1' → '2', parameters.k2 '2' → '3', "
        "parameters.k3 '3' → '4', … (6 fields)"
    )
    assert clash.to_json()["fields"][5] == {"path": "parameters.k5", "live": "5", "wanted": "6"}
