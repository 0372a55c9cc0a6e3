"""The whole input, indexed for rules that look across objects.

Lookups are by index (kind and name, label pairs), not scans, so cross-object rules stay
linear in the size of the input: a 20,000-object corpus must not cost 20,000 squared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from berth.lint.model import Document
from berth.lint.rules._pod import WORKLOAD_KINDS, as_dict, pod_labels, selector_matches

# Kinds the cross-object rules read; workers send only these back to the parent.
CROSS_KINDS = WORKLOAD_KINDS | {"Service", "PodDisruptionBudget", "PersistentVolumeClaim", "StorageClass"}
T = TypeVar("T")


def same_namespace(a: str, b: str) -> bool:
    """Objects without a namespace go wherever ``kubectl -n`` puts them: they match any."""
    return not a or not b or a == b


class Context:
    """Objects of the input by kind, name and labels, plus run-wide settings rules need."""

    def __init__(self, docs: Iterable[Document] = (), known_storage_classes: Iterable[str] = ()) -> None:
        self.by_kind: dict[str, list[Document]] = defaultdict(list)
        self._named: dict[tuple[str, str], list[Document]] = defaultdict(list)
        self._workloads_by_label: dict[tuple[str, str], list[Document]] = defaultdict(list)
        self._memo: dict[str, Any] = {}
        for doc in docs:
            self.by_kind[doc.kind].append(doc)
            self._named[(doc.kind, doc.name)].append(doc)
            if doc.kind in WORKLOAD_KINDS:
                for pair in pod_labels(doc).items():
                    self._workloads_by_label[pair].append(doc)
        self.known_storage_classes = frozenset(known_storage_classes)

    def memo(self, key: str, factory: Callable[[], T]) -> T:
        """A value derived from the whole input, computed once per run."""
        if key not in self._memo:
            self._memo[key] = factory()
        value: T = self._memo[key]
        return value

    def of_kind(self, kind: str, namespace: str | None = None) -> Iterator[Document]:
        for doc in self.by_kind.get(kind, ()):
            if namespace is None or same_namespace(doc.namespace, namespace):
                yield doc

    def named(self, kind: str, name: str, namespace: str | None = None) -> Document | None:
        for doc in self._named.get((kind, name), ()):
            if namespace is None or same_namespace(doc.namespace, namespace):
                return doc
        return None

    def workloads(self, namespace: str | None = None) -> Iterator[Document]:
        for kind in sorted(WORKLOAD_KINDS):
            yield from self.of_kind(kind, namespace)

    def workloads_selected(self, selector: Mapping[str, Any], namespace: str) -> list[Document]:
        """Workloads whose pod labels a label selector matches (candidates found by label index)."""
        match_labels = as_dict(selector.get("matchLabels"))
        if match_labels:
            pairs = [(str(k), str(v)) for k, v in match_labels.items()]
            lists = [self._workloads_by_label.get(p, []) for p in pairs]
            candidates: Iterable[Document] = sorted(lists, key=lambda docs: len(docs))[0]
        else:
            candidates = self.workloads()
        return [
            w
            for w in candidates
            if same_namespace(w.namespace, namespace) and selector_matches(selector, pod_labels(w))
        ]

    def pdbs_selecting(self, workload: Document) -> list[Document]:
        """PodDisruptionBudgets whose selector matches a workload's pods."""
        index = self.memo("pdbs-by-label", self._index_pdbs)
        labels = pod_labels(workload)
        candidates = {id(p): p for pair in labels.items() for p in index.get(pair, [])}
        candidates.update({id(p): p for p in index.get(None, [])})
        out = []
        for pdb in candidates.values():
            selector = as_dict(pdb.obj.get("spec")).get("selector")
            if same_namespace(pdb.namespace, workload.namespace) and selector and selector_matches(selector, labels):
                out.append(pdb)
        return out

    def _index_pdbs(self) -> dict[tuple[str, str] | None, list[Document]]:
        index: dict[tuple[str, str] | None, list[Document]] = defaultdict(list)
        for pdb in self.of_kind("PodDisruptionBudget"):
            match_labels = as_dict(as_dict(as_dict(pdb.obj.get("spec")).get("selector")).get("matchLabels"))
            first = next(iter(match_labels.items()), None)
            index[(str(first[0]), str(first[1])) if first else None].append(pdb)
        return index

    def storage_class(self, name: str) -> Document | None:
        return self.named("StorageClass", name)

    def default_storage_class(self) -> Document | None:
        def find() -> Document | None:
            for doc in self.of_kind("StorageClass"):
                if str(doc.annotations.get("storageclass.kubernetes.io/is-default-class", "")).lower() == "true":
                    return doc
            return None

        return self.memo("default-storage-class", find)
