"""Spec → Kubernetes objects, one module per concern.

:func:`render_all` returns plain dicts in a stable, apply-safe order: what others
depend on (namespace, classes, volumes, identity) comes before what uses it.
"""

from __future__ import annotations

from typing import Any

from berth.spec.model import TrainingCluster


def render_all(spec: TrainingCluster) -> list[dict[str, Any]]:
    """Every object of the stack, in apply order."""
    from berth.render import backup, datasets, lifecycle, monitoring, network, storage, workload

    objects: list[dict[str, Any]] = []
    objects += workload.namespace(spec)
    objects += storage.storage_classes(spec)
    objects += [o for o in storage.shared_claims(spec) if o["kind"] == "PersistentVolume"]
    objects += workload.service_account(spec)
    objects += lifecycle.rbac(spec)
    objects += lifecycle.runner(spec)
    objects.append(workload.headless_service(spec))
    objects += [o for o in storage.shared_claims(spec) if o["kind"] == "PersistentVolumeClaim"]
    objects += datasets.populate_jobs(spec)
    objects.append(workload.statefulset(spec))
    objects += workload.disruption_budget(spec)
    objects += network.network_policy(spec)
    objects += monitoring.monitoring(spec)
    objects += backup.backup(spec)
    return objects
