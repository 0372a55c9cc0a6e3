"""The whole input, indexed for rules that look across objects."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from berth.lint.model import Document
from berth.lint.rules._pod import WORKLOAD_KINDS

# Kinds the cross-object rules read; workers send only these back to the parent.
CROSS_KINDS = WORKLOAD_KINDS | {"Service", "PodDisruptionBudget", "PersistentVolumeClaim", "StorageClass"}


def same_namespace(a: str, b: str) -> bool:
    """Objects without a namespace go wherever ``kubectl -n`` puts them: they match any."""
    return not a or not b or a == b


class Context:
    """Objects of the input by kind, plus run-wide settings rules need."""

    def __init__(self, docs: Iterable[Document] = (), known_storage_classes: Iterable[str] = ()) -> None:
        self.by_kind: dict[str, list[Document]] = defaultdict(list)
        for doc in docs:
            self.by_kind[doc.kind].append(doc)
        self.known_storage_classes = frozenset(known_storage_classes)

    def of_kind(self, kind: str, namespace: str | None = None) -> Iterator[Document]:
        for doc in self.by_kind.get(kind, ()):
            if namespace is None or same_namespace(doc.namespace, namespace):
                yield doc

    def named(self, kind: str, name: str, namespace: str | None = None) -> Document | None:
        for doc in self.of_kind(kind, namespace):
            if doc.name == name:
                return doc
        return None

    def workloads(self, namespace: str | None = None) -> Iterator[Document]:
        for kind in sorted(WORKLOAD_KINDS):
            yield from self.of_kind(kind, namespace)

    def storage_class(self, name: str) -> Document | None:
        return self.named("StorageClass", name)

    def default_storage_class(self) -> Document | None:
        for doc in self.of_kind("StorageClass"):
            if str(doc.annotations.get("storageclass.kubernetes.io/is-default-class", "")).lower() == "true":
                return doc
        return None
