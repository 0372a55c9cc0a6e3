"""NetworkPolicy: the training port open only to this cluster's pods, metrics only to monitoring."""

from __future__ import annotations

from typing import Any

from berth.render.labels import meta, selector
from berth.spec.model import TrainingCluster


def network_policy(spec: TrainingCluster) -> list[dict[str, Any]]:
    """Ingress allow-list for the training pods; egress is left to the cluster's defaults."""
    if not spec.spec.network_policy:
        return []
    # Peers may use every port: frameworks open more than the rendezvous one (NCCL, gRPC workers).
    # Nothing outside this cluster's pods reaches the training port.
    ingress: list[dict[str, Any]] = [{"from": [{"podSelector": {"matchLabels": selector(spec)}}]}]
    if spec.spec.monitoring.prometheus:
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": spec.spec.monitoring.namespace}
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": spec.spec.metrics_port}],
            }
        )
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(spec, f"{spec.name}-training", "network"),
            "spec": {"podSelector": {"matchLabels": selector(spec)}, "policyTypes": ["Ingress"], "ingress": ingress},
        }
    ]
