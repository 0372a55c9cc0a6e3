"""Copy-on-write snapshots by ``fork()``: an async save without a copy (what Redis BGSAVE does).

At ``save()`` the process forks; the child sees the arrays exactly as they were at that moment
(the kernel copies a page only when the parent writes it), writes and commits the shard, and
exits. The parent's only cost is the page-table copy (tens of ms per GiB); its RSS grows only by
the pages the training loop overwrites before the child is done.

Forking a process that has threads is safe only for a child that takes no lock another thread
might hold at the moment of the fork. The child therefore runs nothing but what the parent
prepared: ``os`` calls on precomputed paths and memoryviews (open, pwrite, fsync, rename,
statvfs), zlib-ng's CRC, numpy copies into its own bounce buffers, and ``os._exit``. It does not
log, import, start threads, run the garbage collector or ``atexit`` handlers; ``prctl`` is
resolved through ctypes before the fork. glibc's malloc and CPython's own locks (the GIL, the
import lock, ``threading``) are reset in the child by their at-fork handlers.

The child dies with the parent: ``PR_SET_PDEATHSIG`` (``SIGKILL``) is armed first thing, and
``getppid()`` re-checked after it (a parent killed between the fork and the ``prctl`` leaves the
child orphaned: it exits at once). The signal follows the *thread* that forked, so the manager
forks from its long-lived writer thread, never from the caller's. The child ignores SIGINT,
SIGTERM and SIGHUP: a Ctrl-C or a pod's SIGTERM to the process group is the parent's to handle
(``close()`` waits for the save; a parent that dies takes the child with it).

Its outcome comes back through a pipe: ``ok``, or a JSON error (a :class:`BerthError`'s message
and hint, an ``OSError``'s errno and path). A child that died without a word (the OOM killer) is
reported with its signal; the parent then removes its temporary directory.
"""

from __future__ import annotations

import contextlib
import gc
import json
import mmap
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn

import numpy as np

from berth.errors import BerthError

PR_SET_PDEATHSIG = 1
EXIT_OK, EXIT_FAILED, EXIT_ORPHANED = 0, 1, 3
_MESSAGE_MAX = 3000
"""Error text is cut to this, so the one message fits a pipe's atomic write (PIPE_BUF, 4096)."""


class SnapshotError(BerthError):
    """The snapshot child failed in a way that is not a user's ``BerthError`` or an ``OSError``."""


def unavailable() -> str | None:
    """Why fork snapshots cannot be used in this process now, or None when they can."""
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return "fork snapshots need Linux (PR_SET_PDEATHSIG)"
    if "jax" in sys.modules:
        # JAX's runtime threads may hold locks at any moment, and JAX warns on every fork; its
        # arrays are immutable anyway and are saved without a copy.
        return "JAX is imported (its runtime threads make fork() unsafe; JAX arrays need no copy)"
    return None


@cache
def _prctl() -> Callable[..., int]:
    """libc's prctl, looked up in the parent: the child must not dlopen or dlsym (locks)."""
    import ctypes  # only for fork snapshots

    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.prctl
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    found: Callable[..., int] = fn
    return found


@cache
def _madvise() -> Callable[..., int]:
    """libc's madvise, looked up in the parent (see :func:`_prctl`)."""
    import ctypes

    fn = ctypes.CDLL(None, use_errno=True).madvise
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    found: Callable[..., int] = fn
    return found


RELEASE_MIN = 4 << 20
"""Sources smaller than this keep their pages (not worth a system call)."""


def _address(arr: np.ndarray[Any, Any]) -> int:
    return int(arr.__array_interface__["data"][0])  # no ctypes object: safe in the child


class PageRelease:
    """In the child, gives back the pages of the arrays it has already copied out
    (``madvise(MADV_DONTNEED)`` on its own mapping), as :func:`write_gathered`'s ``copied``.

    A page the child no longer maps is the parent's alone again: the training loop's next write
    to it reuses it instead of copying it, and the child holds less memory as it goes. Only
    pages wholly inside a source of at least RELEASE_MIN bytes that overlaps no other source
    are given back (the child would read zeros where it still needed bytes). Built in the
    parent, before the fork, from the sources' addresses (the same in the child).
    """

    def __init__(self, sources: list[memoryview]) -> None:
        spans = sorted(
            (_address(arr), _address(arr) + arr.size)
            for arr in (np.frombuffer(m.cast("B") if m.ndim != 1 or m.format != "B" else m, np.uint8) for m in sources)
            if arr.size
        )
        self._free: dict[int, int] = {}  # start -> the address given back up to
        reach = 0  # the furthest end of the spans before this one
        for i, (start, end) in enumerate(spans):
            alone = start >= reach and (i + 1 == len(spans) or end <= spans[i + 1][0])
            if alone and end - start >= RELEASE_MIN:
                self._free[start] = start
            reach = max(reach, end)
        self._madvise = _madvise()

    @property
    def sources(self) -> int:
        """How many sources may give their pages back."""
        return len(self._free)

    def __call__(self, src: np.ndarray[tuple[int], np.dtype[np.uint8]], copied: int) -> None:
        start = _address(src)
        done = self._free.get(start)
        if done is None:
            return
        page = mmap.PAGESIZE
        low = max(done, -(-start // page) * page)
        high = (start + copied) // page * page
        if high > low and self._madvise(low, high - low, mmap.MADV_DONTNEED) == 0:
            self._free[start] = high


@contextlib.contextmanager
def _threads_allowed() -> Iterator[None]:
    """Python 3.12+ warns (DeprecationWarning) when a process with threads forks. This fork is
    meant: the child runs only the lock-free code described in the module docstring. On 3.11
    nothing warns and nothing is changed (``catch_warnings`` touches process-wide filters)."""
    if sys.version_info < (3, 12):
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning
        )
        yield


@dataclass
class Child:
    """A running snapshot child: its pid and the read end of its result pipe."""

    pid: int
    fd: int


def start(job: Callable[[], object]) -> Child:
    """Fork; the child runs ``job`` (which must only use what it was handed) and exits.

    Raises OSError (ENOMEM, EAGAIN) when the kernel refuses the fork: the caller copies instead.
    """
    prctl = _prctl()
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    try:
        with _threads_allowed():
            pid = os.fork()
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:
        _child(job, read_fd, write_fd, parent, prctl)
    os.close(write_fd)
    return Child(pid, read_fd)


def _child(job: Callable[[], object], read_fd: int, write_fd: int, parent: int, prctl: Callable[..., int]) -> NoReturn:
    code = EXIT_FAILED
    try:
        gc.disable()  # a collection could run finalizers that take locks
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            code = EXIT_ORPHANED  # the parent died before the prctl: never commit for a dead trainer
        else:
            os.close(read_fd)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            job()
            os.write(write_fd, b"ok")
            code = EXIT_OK
    except BaseException as err:  # reported to the parent, then _exit
        with contextlib.suppress(BaseException):
            os.write(write_fd, _encode(err))
    finally:
        os._exit(code)


def _encode(err: BaseException) -> bytes:
    info: dict[str, Any] = {"type": type(err).__name__, "message": str(err)[:_MESSAGE_MAX]}
    if isinstance(err, BerthError):
        info.update(message=err.message[:_MESSAGE_MAX], hint=(err.hint or "")[:500], berth=True)
    elif isinstance(err, OSError):
        info.update(errno=err.errno, strerror=err.strerror, filename=str(err.filename)[:500] if err.filename else None)
    return json.dumps(info).encode()


def _decode(raw: bytes) -> BaseException:
    try:
        info = json.loads(raw)
    except ValueError:
        return SnapshotError(f"the snapshot writer sent an unreadable result: {raw[:200]!r}")
    if info.get("berth"):
        return BerthError(info["message"], info.get("hint") or None)
    if info.get("errno") is not None:
        if info.get("filename"):
            return OSError(info["errno"], info["strerror"], info["filename"])
        return OSError(info["errno"], info["strerror"])
    return SnapshotError(f"the snapshot writer failed: {info['type']}: {info['message']}")


def _died(pid: int, status: int | None) -> str:
    if status is None:
        return f"the snapshot writer (pid {pid}) ended without a result and was reaped by someone else"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        hint = " (the kernel's OOM killer, or someone else's kill)" if sig == signal.SIGKILL else ""
        return f"the snapshot writer (pid {pid}) was killed by {name}{hint}"
    return f"the snapshot writer (pid {pid}) exited with status {os.waitstatus_to_exitcode(status)} without a result"


def wait(child: Child) -> None:
    """Block until the child has exited and committed; else raise what it reported.

    Its error comes back as a BerthError or an OSError; a child that died without a word
    raises SnapshotError (its temporary directory is left for the caller to remove).
    """
    try:
        _, status = os.waitpid(child.pid, 0)  # the result is a few bytes: it waits in the pipe
        exited: int | None = status
    except ChildProcessError:  # reaped by someone else (a SIGCHLD handler): the pipe still tells
        exited = None
    try:
        os.set_blocking(child.fd, False)
        try:
            raw = os.read(child.fd, 1 << 16)
        except BlockingIOError:  # another fork of this process may still hold the write end
            raw = b""
    finally:
        os.close(child.fd)
    if raw == b"ok":
        return
    if raw:
        raise _decode(raw)
    raise SnapshotError(_died(child.pid, exited), "the step was not committed; the next save writes a new one")
