"""The berth operator: ``TrainingCluster`` as a Kubernetes API (docs/operator.md).

``crd`` generates the CustomResourceDefinition from the spec model (one source of truth with
``berth schema``); ``reconcile`` turns a custom resource into the same ``kube.up`` apply the CLI
does and computes its status; ``controller`` wires that into kopf (imported only here, never by
the CLI at start-up); ``manifests`` renders the install objects.
"""
