"""Pod features (shm, init containers, sidecars, probes, env sources, pull secrets, scheduling, queues,
pod volumes, the ``podTemplate`` overlay): each renders into a StatefulSet that is valid in strict
mode, and the overlay keeps what berth renders unless the overlay asks otherwise."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.contract import (
    ANNOTATION_VOLCANO_MIN_MEMBER,
    ANNOTATION_VOLCANO_QUEUE,
    LABEL_KUEUE_QUEUE,
    MANAGED_ENV,
    TRAINER_CONTAINER,
)
from berth.render import render_all
from berth.spec import overlay
from berth.spec.model import TrainingCluster
from berth.spec.pod_checks import skeleton
from berth.spec.validate import check

from ..conftest import RunBerth
from .render_helpers import kube_validator

BASE: dict[str, Any] = {
    "apiVersion": "berth.dev/v1alpha1",
    "kind": "TrainingCluster",
    "metadata": {"name": "pf", "namespace": "train"},
    "spec": {
        "framework": "pytorch",
        "replicas": 2,
        "image": "pytorch/pytorch:2.5.1",
        "command": ["torchrun", "/workspace/train.py"],
        "resources": {"requests": {"cpu": "8", "memory": "64Gi"}, "limits": {"memory": "64Gi"}},
        "storageClasses": {"standard": {"existing": True}},
        "volumes": {"ckpt": {"mountPath": "/ckpt", "size": "10Gi", "storageClass": "standard"}},
    },
}

SMALL = {"requests": {"cpu": "100m", "memory": "64Mi"}}

# Each feature alone: (id, spec fields, what the rendered pod template must contain).
FEATURES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "shm",
        {"shm": "16Gi"},
        {
            "spec.volumes": {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
            "trainer.volumeMounts": {"name": "shm", "mountPath": "/dev/shm"},
        },
    ),
    (
        "init-containers",
        {"initContainers": [{"name": "fetch", "command": ["sh", "-c", "true"], "resources": SMALL}]},
        {"spec.initContainers": {"name": "fetch", "image": "pytorch/pytorch:2.5.1"}},
    ),
    (
        "sidecars",
        {"sidecars": [{"name": "logs", "image": "fluent/fluent-bit:3.1", "resources": SMALL}]},
        {"spec.initContainers": {"name": "logs", "restartPolicy": "Always"}},
    ),
    (
        "probes",
        {
            "probes": {
                "startup": {"tcpSocket": {"port": "training"}, "failureThreshold": 60},
                "readiness": {"tcpSocket": {"port": 2222}},
                "liveness": {"httpGet": {"path": "/metrics", "port": "metrics"}},
            }
        },
        {
            "trainer.startupProbe": {"tcpSocket": {"port": "training"}},
            "trainer.readinessProbe": {"tcpSocket": {"port": 2222}},
            "trainer.livenessProbe": {"httpGet": {"port": "metrics"}},
        },
    ),
    (
        "env-value-from",
        {
            "env": {
                "HF_TOKEN": {"valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
                "MODE": {"valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode", "optional": True}}},
                "NODE_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            },
            "envFrom": [{"secretRef": {"name": "wandb"}, "prefix": "WANDB_"}, {"configMapRef": {"name": "cfg"}}],
        },
        {
            "trainer.env": {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
            "trainer.envFrom": {"secretRef": {"name": "wandb"}},
        },
    ),
    ("image-pull-secrets", {"imagePullSecrets": ["registry"]}, {"spec.imagePullSecrets": {"name": "registry"}}),
    (
        "node-selection",
        {
            "scheduling": {
                "nodeSelector": {"pool": "gpu"},
                "tolerations": [{"key": "dedicated", "value": "ml", "effect": "NoExecute", "tolerationSeconds": 60}],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["h100"]}]}
                            ]
                        }
                    }
                },
                "priorityClassName": "training-high",
                "schedulerName": "custom-scheduler",
            }
        },
        {
            "spec.nodeSelector": {"pool": "gpu"},
            "spec.tolerations": {"key": "dedicated", "tolerationSeconds": 60},
            "spec.affinity": {"nodeAffinity": {}},
            "spec.priorityClassName": "training-high",
            "spec.schedulerName": "custom-scheduler",
        },
    ),
    (
        "volcano",
        {"scheduling": {"queue": {"volcano": "research"}}},
        {"spec.schedulerName": "volcano", "metadata.annotations": {ANNOTATION_VOLCANO_QUEUE: "research"}},
    ),
    ("kueue", {"scheduling": {"queue": {"kueue": "team-a"}}}, {}),
    (
        "pod-volumes",
        {
            "podVolumes": {
                "config": {"mountPath": "/etc/train", "configMap": {"name": "train-config"}},
                "creds": {"mountPath": "/var/creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                "tokens": {
                    "mountPath": "/var/tokens",
                    "projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}]},
                },
                "vault": {
                    "mountPath": "/vault",
                    "csi": {"driver": "secrets-store.csi.k8s.io", "volumeAttributes": {"secretProviderClass": "v"}},
                },
            }
        },
        {
            "spec.volumes": {"name": "vault", "csi": {"driver": "secrets-store.csi.k8s.io"}},
            "trainer.volumeMounts": {"name": "config", "mountPath": "/etc/train", "readOnly": True},
        },
    ),
    (
        "pod-template",
        {
            "podTemplate": {
                "metadata": {"annotations": {"team": "ml"}},
                "spec": {
                    "hostIPC": False,
                    "containers": [{"name": "trainer", "env": [{"name": "EXTRA", "value": "1"}]}],
                    "dnsConfig": {"options": [{"name": "ndots", "value": "1"}]},
                },
            }
        },
        {"trainer.env": {"name": "EXTRA", "value": "1"}, "spec.dnsConfig": {"options": [{"name": "ndots"}]}},
    ),
]


def _spec(fields: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for key, value in fields.items():
        if key == "scheduling":
            doc["spec"].setdefault("scheduling", {}).update(value)
        else:
            doc["spec"][key] = value
    return doc


def _statefulset(doc: dict[str, Any]) -> dict[str, Any]:
    spec = TrainingCluster.model_validate(doc)
    assert check(spec) == []
    return next(o for o in render_all(spec) if o["kind"] == "StatefulSet")


def _contains(big: Any, small: Any) -> bool:
    """``small`` is in ``big``: a sub-mapping, an item of a list, or equal."""
    if isinstance(big, list) and isinstance(small, list):
        return all(_contains(big, item) for item in small)
    if isinstance(big, list):
        return any(_contains(item, small) for item in big)
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _contains(big[k], v) for k, v in small.items())
    return bool(big == small)


def _at(sts: dict[str, Any], where: str) -> Any:
    template = sts["spec"]["template"]
    if where.startswith("trainer."):
        trainer = next(c for c in template["spec"]["containers"] if c["name"] == TRAINER_CONTAINER)
        return trainer.get(where.removeprefix("trainer."))
    part, _, field = where.partition(".")
    return template[part].get(field)


@pytest.mark.parametrize(("fields", "expected"), [f[1:] for f in FEATURES], ids=[f[0] for f in FEATURES])
def test_each_feature_renders_a_strictly_valid_statefulset(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    sts = _statefulset(_spec(fields))
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in kube_validator("StatefulSet", "apps/v1").iter_errors(sts)
    ]
    assert errors == []
    for where, value in expected.items():
        assert _contains(_at(sts, where), value), (where, _at(sts, where))


def test_every_feature_is_opt_in_so_the_default_pod_is_unchanged() -> None:
    """The features add nothing when unset (the golden files check the whole output)."""
    pod = _statefulset(_spec({}))["spec"]["template"]["spec"]
    assert not {"initContainers", "imagePullSecrets", "affinity", "priorityClassName", "schedulerName"} & set(pod)
    assert [v["name"] for v in pod.get("volumes", [])] == []


def test_queues_label_and_annotate_the_statefulset() -> None:
    kueue = _statefulset(_spec({"scheduling": {"queue": {"kueue": "team-a"}}}))
    assert kueue["metadata"]["labels"][LABEL_KUEUE_QUEUE] == "team-a"
    assert "schedulerName" not in kueue["spec"]["template"]["spec"]
    volcano = _statefulset(_spec({"scheduling": {"queue": {"volcano": "research"}}}))
    assert volcano["metadata"]["annotations"][ANNOTATION_VOLCANO_MIN_MEMBER] == "2"
    assert LABEL_KUEUE_QUEUE not in volcano["metadata"]["labels"]


def test_sidecars_and_init_containers_get_the_restricted_security_context() -> None:
    sts = _statefulset(
        _spec({"sidecars": [{"name": "logs", "securityContext": {"readOnlyRootFilesystem": True}, "resources": SMALL}]})
    )
    (logs,) = sts["spec"]["template"]["spec"]["initContainers"]
    assert logs["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert logs["securityContext"]["readOnlyRootFilesystem"] is True
    assert logs["image"] == BASE["spec"]["image"]


def test_all_features_at_once_lint_clean(tmp_path: Path, berth: RunBerth) -> None:
    fields: dict[str, Any] = {}
    for _, more, _ in FEATURES:
        for key, value in more.items():
            if key == "scheduling":
                fields.setdefault("scheduling", {}).update(value)
            else:
                fields[key] = value
    fields["scheduling"].pop("schedulerName")  # the Volcano queue sets it
    fields["scheduling"].pop("queue")
    fields["scheduling"]["queue"] = {"volcano": "research"}
    path = tmp_path / "berth.yaml"
    path.write_text(yaml.safe_dump(_spec(fields)), encoding="utf-8")
    result = berth("lint", str(path))
    assert result.code == 0, result.stdout + result.stderr
    rendered = berth("render", str(path))
    assert rendered.code == 0, rendered.stderr


# --- the overlay -----------------------------------------------------------------------------------------


def test_overlay_merges_lists_by_their_merge_key() -> None:
    base = {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}], "args": ["p"]}]}}
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "3"}], "args": ["q"]},
                {"name": "b", "image": "busybox"},
            ]
        }
    }
    merged = overlay.merge(base, patch)
    a, b = merged["spec"]["containers"]
    assert a["env"] == [{"name": "X", "value": "3"}, {"name": "Y", "value": "2"}]
    assert a["args"] == ["q"]  # no merge key: replaced, as kubectl does
    assert b == {"name": "b", "image": "busybox"}
    assert base["spec"]["containers"][0]["env"] == [{"name": "X", "value": "1"}]  # inputs untouched


def test_overlay_directives_delete_and_replace() -> None:
    base = {"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}], "x": {"k": 1, "j": 2}}}
    merged = overlay.merge(base, {"spec": {"volumes": [{"name": "a", "$patch": "delete"}], "x": {"k": None}}})
    assert merged == {"spec": {"volumes": [{"name": "b", "emptyDir": {}}], "x": {"j": 2}}}
    merged = overlay.merge(base, {"spec": {"volumes": [{"$patch": "replace"}, {"name": "c", "emptyDir": {}}]}})
    assert merged["spec"]["volumes"] == [{"name": "c", "emptyDir": {}}]
    merged = overlay.merge(base, {"spec": {"x": {"$patch": "replace", "z": 3}}})
    assert merged["spec"]["x"] == {"z": 3}


def test_overlay_paths_follow_merge_keys_back_into_the_overlay() -> None:
    patch = {"spec": {"containers": [{"name": "side"}, {"name": "trainer", "ports": [{"containerPort": "x"}]}]}}
    merged = overlay.merge({"spec": {"containers": [{"name": "trainer", "ports": [{"containerPort": 1}]}]}}, patch)
    # merged: trainer first (berth's), side appended
    assert overlay.overlay_path(patch, merged, ("spec", "containers", 0, "ports", 1, "containerPort")) == (
        "spec",
        "containers",
        1,
        "ports",
        0,
        "containerPort",
    )
    assert overlay.overlay_path(patch, merged, ("spec", "containers", 1, "image")) == ("spec", "containers", 0)


def test_skeleton_names_what_render_renders() -> None:
    """The overlay is validated against ``skeleton`` in the spec layer: it must not drift from render."""
    doc = _spec({k: v for _, fields, _ in FEATURES for k, v in fields.items() if k in ("shm", "podVolumes")})
    doc["spec"]["sidecars"] = [{"name": "logs"}]
    doc["spec"]["initContainers"] = [{"name": "fetch"}]
    spec = TrainingCluster.model_validate(doc)
    pod = next(o for o in render_all(spec) if o["kind"] == "StatefulSet")["spec"]["template"]["spec"]
    sk = skeleton(spec)["spec"]

    def names(items: list[dict[str, Any]] | None, key: str = "name") -> list[Any]:
        return [i[key] for i in items or []]

    assert names(sk["containers"]) == names(pod["containers"])
    assert names(sk.get("initContainers")) == names(pod.get("initContainers"))
    assert names(sk.get("volumes")) == names(pod.get("volumes"))
    trainer, sk_trainer = pod["containers"][0], sk["containers"][0]
    assert [(m["name"], m["mountPath"]) for m in sk_trainer["volumeMounts"]] == [
        (m["name"], m["mountPath"]) for m in trainer["volumeMounts"]
    ]
    assert names(sk_trainer["ports"], "containerPort") == names(trainer["ports"], "containerPort")


# Overlays hypothesis draws: they touch the trainer, add containers and volumes, set pod fields, and
# sometimes delete what they added; none asks to drop what berth rendered.
env_names = st.from_regex(r"\A[A-Z][A-Z0-9_]{0,10}\Z").filter(lambda n: n not in MANAGED_ENV and "BERTH" not in n)
dns = st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z").filter(lambda n: n not in ("trainer", "shm", "ckpt"))


@st.composite
def overlays(draw: st.DrawFn) -> dict[str, Any]:
    trainer: dict[str, Any] = {"name": TRAINER_CONTAINER}
    if draw(st.booleans()):
        trainer["env"] = [
            {"name": n, "value": draw(st.text(max_size=5))} for n in draw(st.lists(env_names, unique=True))
        ]
    if draw(st.booleans()):
        trainer["resources"] = {"limits": {"cpu": draw(st.sampled_from(["1", "500m", "16"]))}}
    if draw(st.booleans()):
        trainer["securityContext"] = {"readOnlyRootFilesystem": draw(st.booleans())}
    if draw(st.booleans()):
        trainer["volumeMounts"] = [{"mountPath": "/ckpt", "readOnly": False}]
    containers = [trainer]
    extra = draw(st.lists(dns, unique=True, max_size=2))
    containers += [{"name": n, "image": "busybox", "args": ["sleep", "1"]} for n in extra]
    pod: dict[str, Any] = {"containers": draw(st.permutations(containers))}
    volumes = draw(st.lists(dns, unique=True, max_size=2))
    if volumes:
        pod["volumes"] = [{"name": f"x{n}", "emptyDir": {}} for n in volumes]
    if draw(st.booleans()):
        pod["hostname"] = draw(dns)
    if draw(st.booleans()):
        pod["securityContext"] = {"supplementalGroups": [draw(st.integers(1, 60000))]}
    if draw(st.booleans()) and volumes:
        pod["volumes"].append({"name": f"x{volumes[0]}", "$patch": "delete"})
        pod["volumes"] = [v for v in pod["volumes"] if v.get("$patch") or v["name"] != f"x{volumes[0]}"]
    out: dict[str, Any] = {"spec": pod}
    if draw(st.booleans()):
        out["metadata"] = {"annotations": {"team": draw(dns)}}
    return out


@given(patch=overlays(), shm=st.booleans(), sidecar=st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_overlay_never_drops_berths_env_volumes_or_security_context(
    patch: dict[str, Any], shm: bool, sidecar: bool
) -> None:
    fields: dict[str, Any] = {"podTemplate": patch}
    if shm:
        fields["shm"] = "1Gi"
    if sidecar:
        fields["sidecars"] = [{"name": "side", "resources": SMALL}]
    plain = _spec({k: v for k, v in fields.items() if k != "podTemplate"})
    before = _statefulset(plain)["spec"]["template"]
    sts = _statefulset(_spec(fields))
    after = sts["spec"]["template"]
    assert [
        f"{list(e.absolute_path)}: {e.message}" for e in kube_validator("StatefulSet", "apps/v1").iter_errors(sts)
    ] == []

    def trainer(t: dict[str, Any]) -> dict[str, Any]:
        return next(c for c in t["spec"]["containers"] if c["name"] == TRAINER_CONTAINER)

    env_before = {e["name"]: e for e in trainer(before)["env"]}
    env_after = {e["name"]: e for e in trainer(after)["env"]}
    assert {n: env_after.get(n) for n in env_before} == env_before  # rendezvous env: all there, unchanged
    assert {v["name"] for v in before["spec"].get("volumes", [])} <= {
        v["name"] for v in after["spec"].get("volumes", [])
    }
    mounts_after = {m["mountPath"]: m["name"] for m in trainer(after).get("volumeMounts", [])}
    assert {m["mountPath"]: m["name"] for m in trainer(before).get("volumeMounts", [])}.items() <= mounts_after.items()
    # Security context: every field berth set keeps its value (the overlay may add, not drop).
    assert _contains(after["spec"]["securityContext"], before["spec"]["securityContext"])
    for key in ("allowPrivilegeEscalation", "runAsNonRoot", "capabilities", "seccompProfile"):
        assert trainer(after)["securityContext"][key] == trainer(before)["securityContext"][key]
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
    assert [c["name"] for c in before["spec"].get("initContainers", [])] == [
        c["name"] for c in after["spec"].get("initContainers", [])
    ]


def test_a_probe_may_use_a_port_the_overlay_adds() -> None:
    patch = {"spec": {"containers": [{"name": "trainer", "ports": [{"name": "health", "containerPort": 8080}]}]}}
    sts = _statefulset(_spec({"podTemplate": patch, "probes": {"readiness": {"httpGet": {"port": "health"}}}}))
    trainer = sts["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "health", "containerPort": 8080} in trainer["ports"]
    assert trainer["readinessProbe"] == {"httpGet": {"port": "health"}}


def test_overlay_drops_berths_things_only_when_asked() -> None:
    patch = {
        "spec": {
            "securityContext": {"fsGroupChangePolicy": None},
            "containers": [{"name": "trainer", "volumeMounts": [{"mountPath": "/ckpt", "$patch": "delete"}]}],
        }
    }
    pod = _statefulset(_spec({"podTemplate": patch}))["spec"]["template"]["spec"]
    assert "fsGroupChangePolicy" not in pod["securityContext"]
    assert "volumeMounts" not in pod["containers"][0] or pod["containers"][0]["volumeMounts"] == []


def test_init_containers_and_sidecars_may_mount_a_volume_the_overlay_adds() -> None:
    """The way an init container hands files to the trainer: an emptyDir added by the overlay (real pods:
    tests/cluster/test_pod_features_in_pod.py)."""
    exchange = [{"name": "exchange", "mountPath": "/exchange"}]
    patch = {
        "spec": {
            "containers": [{"name": "trainer", "volumeMounts": exchange}],
            "volumes": [{"name": "exchange", "emptyDir": {}}],
        }
    }
    fields = {
        "podTemplate": patch,
        "initContainers": [{"name": "prep", "volumeMounts": exchange, "resources": SMALL}],
        "sidecars": [{"name": "agent", "volumeMounts": exchange, "resources": SMALL}],
    }
    sts = _statefulset(_spec(fields))
    assert [e.message for e in kube_validator("StatefulSet", "apps/v1").iter_errors(sts)] == []
    pod = sts["spec"]["template"]["spec"]
    assert {"name": "exchange", "emptyDir": {}} in pod["volumes"]
    for container in [*pod["initContainers"], pod["containers"][0]]:
        assert {"name": "exchange", "mountPath": "/exchange"} in container["volumeMounts"]


def test_containers_on_the_trainers_image_take_its_pull_policy() -> None:
    """With ``Always`` and a moved tag, an init container on the trainer's image must run the same code."""
    doc = _spec(
        {
            "imagePullPolicy": "Always",
            "initContainers": [{"name": "prep", "resources": SMALL}],
            "sidecars": [{"name": "logs", "image": "fluent/fluent-bit:3.1", "resources": SMALL}],
        }
    )
    pod = _statefulset(doc)["spec"]["template"]["spec"]
    assert [(c["name"], c.get("imagePullPolicy")) for c in pod["initContainers"]] == [
        ("prep", "Always"),
        ("logs", None),
    ]
    assert pod["containers"][0]["imagePullPolicy"] == "Always"
