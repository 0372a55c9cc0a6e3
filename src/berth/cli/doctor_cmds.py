"""``berth doctor``: findings about a running training cluster; ``berth probe``: a volume's measured I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from berth.cli.options import (
    CLUSTER_NAME,
    CONTEXT,
    KUBECONFIG,
    NAME_NAMESPACE,
    OUTPUT,
    Output,
    connect,
    emit_json,
    make_console,
    timeout_seconds,
)

if TYPE_CHECKING:
    from rich.console import Console

    from berth.kube.doctor import Finding

_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def doctor(
    name: str = CLUSTER_NAME,
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = NAME_NAMESPACE,
    probe: bool = typer.Option(
        False,
        "--probe",
        help="Also measure I/O: `berth bench` on a fresh claim of each of the cluster's StorageClasses.",
    ),
    probe_size: str = typer.Option("256Mi", "--probe-size", help="Probe file size on each fresh claim."),
    probe_seconds: float = typer.Option(3.0, "--probe-seconds", min=0.1, help="Length of each random-I/O run."),
    probe_timeout: str = typer.Option("600", "--probe-timeout", help="How long each probe Job may take."),
    output: Output = OUTPUT,
) -> None:
    """Diagnose NAME: Pending pods and claims, zone mismatches, mount failures, orphans, drain blockers.

    With --probe, also slow I/O: each StorageClass the cluster's claims use is measured in a Job on
    a fresh claim (the trainer's image, pull policy and node selector; deleted afterwards) and
    compared with what the class provisions. Exits 1 when an error-level finding is present, so
    scripts can gate on it.
    """
    from berth.kube.doctor import diagnose, gather, ordered

    kube = connect(kubeconfig, context, namespace)
    probes: list[dict[str, Any]] = []
    try:
        facts = gather(kube, name, kube.namespace)
        findings = diagnose(facts)
        if probe:
            from berth.kube.ioprobe import probe_cluster

            err = make_console(stderr=True)
            probes, slow = probe_cluster(
                kube,
                facts.state,
                probe_args=["--size", probe_size, "--seconds", f"{probe_seconds:g}"],
                timeout_s=timeout_seconds(probe_timeout),
                progress=None if output is Output.json else lambda line: err.print(f"probe: {line}", markup=False),
            )
            findings = ordered([*findings, *slow])
    finally:
        kube.close()
    if output is Output.json:
        report: dict[str, Any] = {"name": name, "namespace": facts.state.namespace}
        if probe:
            report["probes"] = probes
        emit_json({**report, "findings": [f.to_json() for f in findings]})
    else:
        console = make_console()
        st = facts.state
        console.print(
            f"{name} in {st.namespace}: {st.ready_replicas}/{st.replicas} ready, rollout {st.rollout}", markup=False
        )
        for done in probes:
            console.print(
                f"StorageClass {done['storageClass']} ({', '.join(done['volumes'])}; probed on node "
                f"{done['node'] or '?'}): sequential write {done['seqWriteMiBps']:,.0f} MiB/s, read "
                f"{done['seqReadMiBps']:,.0f} MiB/s; 4 KiB random read {done['randReadIops']:,.0f} IOPS, "
                f"write {done['randWriteIops']:,.0f} IOPS",
                markup=False,
            )
        if not findings:
            console.print("no problems found", style="green")
        print_findings(console, findings)
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


def print_findings(console: Console, findings: Sequence[Finding]) -> None:
    """Each finding: severity, object and problem, then its evidence and fix."""
    from rich.markup import escape

    for f in findings:
        # Object names and problems come from the cluster: never read them as rich markup.
        console.print(f"[{_STYLE[f.severity]}]{f.severity:7}[/] {escape(f.object)}: {escape(f.problem)}")
        console.print(f"         evidence: {f.evidence}", markup=False)
        console.print(f"         fix: {f.fix}", markup=False)


def probe(
    path: str = typer.Argument(..., help="Directory on the volume to measure (its mount path)."),
    size: str = typer.Option("256Mi", "--size", help="Probe file size (a quantity); the volume needs this free."),
    seconds: float = typer.Option(3.0, "--seconds", min=0.1, help="Length of each random-I/O run."),
    queue_depth: int = typer.Option(16, "--queue-depth", min=1, max=256, help="4 KiB I/Os in flight."),
    storage_class: str | None = typer.Option(
        None, "--storage-class", help="Compare with what this StorageClass provisions (read from the cluster)."
    ),
    capacity: str | None = typer.Option(
        None, "--capacity", help="Volume size for per-GiB rules (default: the filesystem's size)."
    ),
    expect_iops: int | None = typer.Option(
        None, "--expect-iops", min=1, help="Compare with this many IOPS instead of a class (no cluster access)."
    ),
    expect_mibps: float | None = typer.Option(
        None, "--expect-mibps", min=0.1, help="Compare with this throughput in MiB/s instead of a class."
    ),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    output: Output = OUTPUT,
) -> None:
    """Measure a mounted volume like fio: sequential MiB/s, 4 KiB random IOPS (O_DIRECT), fsync latency.

    With --storage-class (or --expect-iops/--expect-mibps, inside a pod without cluster access),
    every figure under 80 % of the promise is a "slow I/O" warning, as `berth doctor` words findings.
    Exit 1 when the probe cannot run (missing or full volume), 2 on a bad flag.
    """
    import os
    from pathlib import Path

    from berth.errors import UsageError
    from berth.quantity import QuantityError, parse_quantity
    from berth.runtime.ioprobe import probe as run_probe

    def bytes_of(flag: str, text: str) -> int:
        try:
            return int(parse_quantity(text))
        except QuantityError as bad:
            raise UsageError(f"{flag}: {bad}") from None

    if storage_class and (expect_iops or expect_mibps):
        raise UsageError("--storage-class and --expect-iops/--expect-mibps exclude each other")
    size_bytes = bytes_of("--size", size)
    capacity_bytes = bytes_of("--capacity", capacity) if capacity else None
    err = make_console(stderr=True)
    result = run_probe(
        Path(path),
        size=size_bytes,
        seconds=seconds,
        queue_depth=queue_depth,
        progress=None if output is Output.json else lambda line: err.print(f"probe: {line}", markup=False),
    )
    findings: list[Finding] = []
    promise, promised_by = None, ""
    if storage_class or expect_iops or expect_mibps:
        from berth.kube.ioprobe import Measured, class_promise, slow_io
        from berth.providers.performance import Promise

        if storage_class:
            if capacity_bytes is None:
                st = os.statvfs(path)
                capacity_bytes = st.f_blocks * st.f_frsize
            kube = connect(kubeconfig, context, None)
            try:
                promise = class_promise(kube, storage_class, capacity_bytes / 2**30)
            finally:
                kube.close()
            promised_by = f"StorageClass {storage_class} provisions"
        else:
            promise, promised_by = Promise(expect_iops, expect_mibps, "--expect-iops/--expect-mibps"), "expected"
        measured = Measured(
            result.seq_read_mib_s,
            result.seq_write_mib_s,
            result.rand_read_iops,
            result.rand_write_iops,
            result.queue_depth,
            result.direct,
        )
        findings = slow_io(measured, promise, target=f"volume {path}", promised_by=promised_by)
    report = {
        **result.to_json(),
        "promised": None
        if promise is None
        else {"iops": promise.iops, "throughputMiBps": promise.throughput_mib_s, "source": promise.source},
        "findings": [f.to_json() for f in findings],
    }
    _print_probe(output, path, report, promised_by, findings)


def bench(
    storage_class: str = typer.Argument(..., help="The StorageClass to measure."),
    image: str = typer.Option(..., "--image", help="An image with berth on its PATH (e.g. your training image)."),
    size: str = typer.Option("10Gi", "--size", help="Size of the fresh claim (per-GiB rules use it)."),
    probe_size: str = typer.Option("256Mi", "--probe-size", help="Probe file size on the claim."),
    seconds: float = typer.Option(3.0, "--seconds", min=0.1, help="Length of each random-I/O run."),
    queue_depth: int = typer.Option(16, "--queue-depth", min=1, max=256, help="4 KiB I/Os in flight."),
    node_selector: list[str] = typer.Option(
        [], "--node-selector", help="KEY=VALUE for the pod's nodeSelector (repeatable): measure on that node type."
    ),
    pull_policy: str | None = typer.Option(None, "--image-pull-policy", help="Always, IfNotPresent or Never."),
    timeout: str = typer.Option("600", "--timeout", help="How long the Job may take: seconds or a duration."),
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = CONTEXT,
    namespace: str | None = typer.Option(
        None, "-n", "--namespace", help="Namespace for the claim and Job (default: the context's)."
    ),
    output: Output = OUTPUT,
) -> None:
    """Measure a StorageClass: `berth probe` in a Job on a fresh claim of it, then both are deleted.

    Reports "slow I/O" like `berth probe --storage-class`. Exit 1 when the claim, the pod or the
    probe fails (its message is shown), 2 on a bad flag.
    """
    from berth.errors import UsageError
    from berth.kube.ioprobe import bench as run_bench

    selector: dict[str, str] = {}
    for item in node_selector:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--node-selector {item!r}: expected KEY=VALUE")
        selector[key] = value
    args = ["--size", probe_size, "--seconds", f"{seconds:g}", "--queue-depth", str(queue_depth)]
    kube = connect(kubeconfig, context, namespace)
    err = make_console(stderr=True)
    try:
        result = run_bench(
            kube,
            storage_class,
            size=size,
            image=image,
            probe_args=args,
            node_selector=selector,
            pull_policy=pull_policy,
            timeout_s=timeout_seconds(timeout),
            progress=None if output is Output.json else lambda line: err.print(f"bench: {line}", markup=False),
        )
    finally:
        kube.close()
    where = f"StorageClass {storage_class} ({size} claim on node {result.node or '?'})"
    _print_probe(output, where, result.to_json(), f"StorageClass {storage_class} provisions", result.findings)


def _print_probe(
    output: Output, where: str, report: dict[str, Any], promised_by: str, findings: Sequence[Finding]
) -> None:
    """The probe's figures, the class's promise and the slow-io findings (probe and bench alike)."""
    if output is Output.json:
        emit_json(report)
        return
    console = make_console()
    console.print(
        f"{where}: sequential write {report['seqWriteMiBps']:,.0f} MiB/s, read {report['seqReadMiBps']:,.0f} MiB/s; "
        f"4 KiB random read {report['randReadIops']:,.0f} IOPS, write {report['randWriteIops']:,.0f} IOPS "
        f"(queue depth {report['queueDepth']}); fsync p50 {report['fsyncP50Ms']:.2f} ms, "
        f"p99 {report['fsyncP99Ms']:.2f} ms",
        markup=False,
    )
    for note in report["notes"]:
        console.print(f"note: {note}", markup=False)
    promise = report.get("promised")
    if promise is not None:
        iops = f"{promise['iops']:,} IOPS" if promise["iops"] else "no IOPS"
        mib = f"{promise['throughputMiBps']:,.0f} MiB/s" if promise["throughputMiBps"] else "no throughput"
        console.print(f"{promised_by} {iops}, {mib} ({promise['source']})", markup=False)
        if not findings and report["direct"]:
            console.print("no slow I/O: every figure reaches 80 % of the promise", style="green")
    print_findings(console, findings)


def register(app: typer.Typer) -> None:
    """Add doctor, probe and bench to the root app."""
    app.command("doctor")(doctor)
    app.command("probe")(probe)
    app.command("bench")(bench)
