"""Monitoring: the guide's Prometheus scrape config, a Pod/ServiceMonitor, and storage alerts."""

from __future__ import annotations

from typing import Any

from berth.quantity import parse_duration
from berth.render.labels import meta, selector
from berth.spec.model import TrainingCluster


def _scrape_config(spec: TrainingCluster) -> str:
    # The guide's job, fixed: keep only this cluster's pods (by instance label) in their namespace,
    # scrape the named metrics port, and label series with pod and PVC-relevant identity.
    import yaml

    job = {
        "job_name": f"berth-{spec.namespace}-{spec.name}",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [spec.namespace]}}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
                "action": "keep",
                "regex": spec.name,
            },
            {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "action": "keep", "regex": "metrics"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        ],
    }
    return yaml.safe_dump({"scrape_configs": [job]}, sort_keys=False)


def _claims_regex(spec: TrainingCluster) -> str:
    """Every claim of the cluster for a PromQL ``=~``: the per-replica ``<template>-<name>-<n>`` and the shared ones.

    A shared dataset or scratch claim fills up as surely as a checkpoint volume (a populate Job
    writes it), so its alerts are the same. Dots in claim names are escaped for RE2, and the
    backslash once more for the PromQL string literal.
    """
    shared = sorted({sv.claim_name.replace(".", "\\\\.") for sv in spec.spec.shared_volumes.values()})
    return "|".join([f".*-{spec.name}-[0-9]+", *shared])


def _rules(spec: TrainingCluster) -> list[dict[str, Any]]:
    ns, name = spec.namespace, spec.name
    pvc = f'namespace="{ns}",persistentvolumeclaim=~"{_claims_regex(spec)}"'
    used = f"kubelet_volume_stats_used_bytes{{{pvc}}} / kubelet_volume_stats_capacity_bytes{{{pvc}}}"
    max_age = spec.spec.monitoring.checkpoint_max_age
    return [
        {
            "alert": "BerthVolumeFillingUp",
            "expr": f"{used} > 0.80",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Training volume {{ $labels.persistentvolumeclaim }} is over 80% full",
                "description": "Expand the claim (the class allows expansion) or prune checkpoints.",
            },
        },
        {
            "alert": "BerthVolumeAlmostFull",
            "expr": f"{used} > 0.90",
            "for": "5m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Training volume {{ $labels.persistentvolumeclaim }} is over 90% full",
                "description": "The next checkpoint may fail with ENOSPC.",
            },
        },
        {
            "alert": "BerthClaimPending",
            "expr": f'kube_persistentvolumeclaim_status_phase{{namespace="{ns}",phase="Pending",'
            f'persistentvolumeclaim=~"{_claims_regex(spec)}"}} == 1',
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Claim {{ $labels.persistentvolumeclaim }} has been Pending for 10 minutes",
                "description": "Run `berth doctor` or `kubectl describe pvc` for the provisioner's reason.",
            },
        },
        {
            "alert": "BerthPodRestarting",
            "expr": "increase(kube_pod_container_status_restarts_total"
            f'{{namespace="{ns}",pod=~"{name}-[0-9]+"}}[30m]) > 2',
            "labels": {"severity": "warning"},
            "annotations": {"summary": "Training pod {{ $labels.pod }} restarted more than twice in 30 minutes"},
        },
        {
            "alert": "BerthCheckpointStale",
            "expr": f'time() - berth_checkpoint_last_success_timestamp_seconds{{namespace="{ns}",pod=~"{name}-[0-9]+"}}'
            f" > {int(parse_duration(max_age))}",
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": f"No checkpoint from {{{{ $labels.pod }}}} in over {max_age}",
                "description": "A crash now loses all progress since; check the trainer's logs.",
            },
        },
    ]


def monitoring(spec: TrainingCluster) -> list[dict[str, Any]]:
    """Scrape ConfigMap, Pod/ServiceMonitor and PrometheusRule, as the spec asks."""
    mon = spec.spec.monitoring
    out: list[dict[str, Any]] = []
    if not mon.prometheus:
        return out
    out.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(spec, f"{spec.name}-prometheus-scrape", "monitoring"),
            "data": {"prometheus.yml": _scrape_config(spec)},
        }
    )
    endpoint = {"port": "metrics", "path": "/metrics", "interval": "30s"}
    if mon.service_monitor:
        out.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": meta(spec, spec.name, "monitoring"),
                "spec": {
                    "selector": {"matchLabels": selector(spec)},
                    "endpoints": [endpoint],
                    "namespaceSelector": {"matchNames": [spec.namespace]},
                },
            }
        )
    if mon.pod_monitor:
        out.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PodMonitor",
                "metadata": meta(spec, spec.name, "monitoring"),
                "spec": {
                    "selector": {"matchLabels": selector(spec)},
                    "podMetricsEndpoints": [endpoint],
                    "namespaceSelector": {"matchNames": [spec.namespace]},
                },
            }
        )
    if mon.alerts:
        out.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": meta(spec, f"{spec.name}-storage", "monitoring"),
                "spec": {"groups": [{"name": f"berth.{spec.name}.storage", "rules": _rules(spec)}]},
            }
        )
    return out
