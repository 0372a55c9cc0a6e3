"""A TF_CONFIG whose worker list does not match the StatefulSet's replicas, service or port.

## What it does
Parses a literal `TF_CONFIG` in a StatefulSet and checks that the cluster has one entry per
replica, each named `<statefulset>-<ordinal>.<serviceName>` and using a port the container
declares.

## Why is this bad?
TensorFlow waits for every listed worker: one host too many, a wrong service name or port
means the job never starts, and one too few leaves a replica out of the job.

## Example
```yaml
spec:
  serviceName: trainer
  replicas: 3
  template:
    spec:
      containers:
      - name: tf
        ports: [{containerPort: 2222}]
        env:
        - name: TF_CONFIG
          value: '{"cluster": {"worker": ["trainer-0.trainer:2222", "trainer-1.trainer:2222"]}}'
```

Use instead:
```yaml
        env:
        - name: TF_CONFIG
          value: >-
            {"cluster": {"worker": ["trainer-0.trainer:2222", "trainer-1.trainer:2222",
            "trainer-2.trainer:2222"]}, "task": {"type": "worker", "index": $(POD_INDEX)}}
```

## Fix
Generate TF_CONFIG from replicas, serviceName and the port (as `berth render` does) instead
of writing it by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from berth.lint.context import Context
from berth.lint.model import Document, Severity
from berth.lint.rules import Hit, Rule
from berth.lint.rules._pod import as_dict, as_list, containers, env_vars, pod_spec, replicas, tf_config

_VAR = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)")


def _problems(hosts: list[str], name: str, service: str, count: int, ports: set[int]) -> Iterator[str]:
    if len(hosts) != count:
        yield f"TF_CONFIG lists {len(hosts)} workers but the StatefulSet has {count} replicas"
    for i, host in enumerate(hosts):
        address, _, port = host.rpartition(":")
        labels = address.split(".")
        if labels[0] != f"{name}-{i}" or len(labels) < 2 or labels[1] != service:
            yield f"worker {i} is {host!r}, expected {name}-{i}.{service}:<port>"
        if ports and (not port.isdigit() or int(port) not in ports):
            yield f"worker {i} uses port {port or '(none)'}, but the container ports are {sorted(ports)}"


def check(doc: Document, ctx: Context) -> Iterator[Hit]:
    found = pod_spec(doc)
    if found is None:
        return
    name = doc.name
    service = str(as_dict(doc.obj.get("spec")).get("serviceName", ""))
    count = replicas(doc)
    for container, path in containers(*found, init=False):
        ports = {p.get("containerPort") for p in as_list(container.get("ports")) if isinstance(p, dict)}
        int_ports = {p for p in ports if isinstance(p, int)}
        for var, var_path in env_vars(container, path):
            value = var.get("value")
            if var.get("name") != "TF_CONFIG" or not isinstance(value, str):
                continue
            config = tf_config(_VAR.sub("0", value))
            if config is None:
                yield Hit((*var_path, "value"), "TF_CONFIG is not valid JSON", "write TF_CONFIG as a JSON object")
                continue
            cluster = as_dict(config.get("cluster"))
            hosts = [str(h) for role in ("chief", "worker") for h in as_list(cluster.get(role))]
            for problem in _problems(hosts, name, service, count, int_ports):
                yield Hit((*var_path, "value"), problem, "list one host per replica: <sts>-<i>.<service>:<port>")


RULE = Rule(
    id="tf-config-mismatch",
    severity=Severity.ERROR,
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"StatefulSet"}),
)
