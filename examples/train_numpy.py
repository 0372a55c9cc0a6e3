"""A toy training loop that checkpoints with berth and resumes where it stopped.

Linear regression by gradient descent in numpy. Run it, interrupt it (Ctrl-C, SIGKILL,
pod preemption), run it again: it resumes from the newest committed step, bit-exact.

    python examples/train_numpy.py --dir /tmp/ckpt --steps 200
"""

from __future__ import annotations

import argparse

import numpy as np

from berth.checkpoint import CheckpointManager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="checkpoint directory (default: BERTH_CHECKPOINT_DIR)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=10, help="save every N steps")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 16))
    y = x @ rng.standard_normal(16) + 0.01 * rng.standard_normal(512)

    # archive= defaults to BERTH_ARCHIVE_URL, rank/world size to the pod's rendezvous env.
    with CheckpointManager(args.dir, keep_last=3, keep_every=100) as mgr:
        step, state = mgr.restore()
        if step is None:
            state = {"w": np.zeros(16), "lr": 0.05, "loss": float("inf"), "rng": rng.bit_generator.state}
            step = 0
            print("starting at step 0")
        else:
            print(f"resumed from step {step}")
        assert isinstance(state, dict)
        w, lr = state["w"].copy(), state["lr"]
        while step < args.steps:
            grad = 2 * x.T @ (x @ w - y) / len(y)
            w -= lr * grad
            step += 1
            loss = float(np.mean((x @ w - y) ** 2))
            if step % args.every == 0 or step == args.steps:
                mgr.save(step, {"w": w, "lr": lr, "loss": loss, "rng": rng.bit_generator.state})
                print(f"step {step} loss {loss:.6f}")
    print(f"done at step {step}")


if __name__ == "__main__":
    main()
