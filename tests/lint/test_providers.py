"""Provider limits: the numbers the spec validator and the linter share."""

from __future__ import annotations

import pytest

from berth.providers import limits

EBS = "ebs.csi.aws.com"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"type": "gp3", "iops": "2000"}, "below the minimum 3000"),
        ({"type": "gp3", "iops": "90000"}, "above the maximum 80000"),
        ({"type": "gp3", "throughput": "100"}, "below the minimum 125"),
        ({"type": "gp3", "iops": "3000", "throughput": "1000"}, "ratio"),
        ({"type": "io2", "iopsPerGB": "1500"}, "iopsPerGB 1500 is above the maximum 1000"),
        ({"type": "io1", "iopsPerGB": "64"}, "above the maximum 50"),
        ({"type": "gp3", "iopsPerGB": "10"}, "applies to io1/io2"),
        ({"type": "st1", "iops": "500"}, "does not take provisioned iops"),
        ({"type": "gp9"}, "unknown EBS volume type"),
        ({"type": "gp3", "iops": "lots"}, "not a number"),
    ],
)
def test_bad_ebs_params(params: dict[str, str], needle: str) -> None:
    problems = limits.check_storage_class_params(EBS, params)
    assert any(needle in p for p in problems), problems


def test_legacy_gp3_limits() -> None:
    params = {"type": "gp3", "iops": "20000", "throughput": "1500"}
    assert limits.check_storage_class_params(EBS, params) == []
    legacy = limits.check_storage_class_params(EBS, params, legacy=True)
    assert len(legacy) == 2


def test_good_params_and_other_providers() -> None:
    assert limits.check_storage_class_params(EBS, {"type": "gp3", "iops": "16000", "throughput": "1000"}) == []
    assert limits.check_storage_class_params(EBS, {"type": "io2", "iopsPerGB": "64"}) == []
    assert limits.check_storage_class_params("pd.csi.storage.gke.io", {"type": "pd-ssd"}) == []


def test_volume_size() -> None:
    gib = limits.GIB
    assert limits.check_volume_size(EBS, {"type": "gp3", "iops": "16000"}, 10 * gib)
    assert limits.check_volume_size(EBS, {"type": "gp3", "iops": "16000"}, 32 * gib) == []
    assert limits.check_volume_size(EBS, {"type": "st1"}, 100 * gib)
    assert limits.check_volume_size(EBS, {"type": "gp3"}, 65 * 1024 * gib)
    assert limits.check_volume_size(EBS, {"type": "io2", "iopsPerGB": "10"}, 5 * gib)
    auto = {"type": "io2", "iopsPerGB": "10", "allowAutoIOPSPerGBIncrease": "true"}
    assert limits.check_volume_size(EBS, auto, 5 * gib) == []
    assert limits.max_volume_size_gib(EBS, {"type": "gp3"}, legacy=True) == 16 * 1024


def test_media_facts() -> None:
    assert limits.is_hdd(EBS, {"type": "sc1"})
    assert not limits.is_hdd(EBS, {})
    assert limits.is_hdd("pd.csi.storage.gke.io", {})
    assert limits.is_zonal_block(EBS, {})
    assert not limits.is_zonal_block("pd.csi.storage.gke.io", {"replication-type": "regional-pd"})
    assert not limits.is_zonal_block("disk.csi.azure.com", {"skuName": "Premium_ZRS"})
    assert not limits.is_zonal_block("nfs.csi.k8s.io", {})
    assert limits.is_encrypted(EBS, {}) is False
    assert limits.is_encrypted(EBS, {"encrypted": "true"}) is True
    assert limits.is_encrypted("nfs.csi.k8s.io", {}) is None
    assert limits.infer_tier(EBS, {"type": "io2"}) == "hot"
    assert limits.infer_tier(EBS, {"type": "st1"}) == "cold"
    assert limits.infer_tier(EBS, {}) == "warm"
