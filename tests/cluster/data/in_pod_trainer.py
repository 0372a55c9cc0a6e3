"""The trainer of tests/cluster/test_in_pod.py, run in real pods as ``berth run -- python3 -c <this>``.

A numpy "model" whose every element equals the step, one step per STEP_SECONDS, a checkpoint
every SAVE_EVERY steps to the pod's claim (BERTH_CHECKPOINT_DIR), and on SIGTERM a final blocking
save of the step it reached. Each line it prints is one fact the test pins.

The image has no torch, so ranks cannot agree through torch.distributed: every rank restores
its own newest committed step (``agree=alone``), from its own claim.
"""

import os
import sys

import numpy as np

from berth.checkpoint import CheckpointManager
from berth.runtime import preempt
from berth.runtime.agree import alone

preempt.install()
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
ckpt = os.environ["BERTH_CHECKPOINT_DIR"]
volume = os.path.dirname(ckpt)
st = os.stat(volume)
groups = ",".join(str(g) for g in sorted(os.getgroups()))
print(f"rank {rank} world {world} master {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}", flush=True)
print(f"ids uid={os.getuid()} gid={os.getgid()} groups={groups}", flush=True)
print(f"volume {volume} owner={st.st_uid}:{st.st_gid} mode={st.st_mode & 0o7777:o}", flush=True)
pace, every = float(os.environ.get("STEP_SECONDS", "0.2")), int(os.environ.get("SAVE_EVERY", "5"))
with CheckpointManager(keep_last=3, agree=alone) as mgr:
    step, state = mgr.restore()
    if step is None:
        step, w = 0, np.zeros(8)
        print("starting at step 0", flush=True)
    else:
        assert isinstance(state, dict)
        w = state["w"]
        assert (w == step).all(), (step, w)
        print(f"resumed from step {step}", flush=True)
    saved = step
    while True:
        if preempt.wait(pace):
            if step != saved:
                mgr.save(step, {"w": w}, blocking=True)
            print(f"SIGTERM: committed step {step}", flush=True)
            sys.exit(143)
        step += 1
        w = w + 1.0
        if step % every == 0:
            mgr.save(step, {"w": w}, blocking=True)
            saved = step
            print(f"committed step {step}", flush=True)
