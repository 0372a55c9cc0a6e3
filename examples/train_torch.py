"""A PyTorch training loop (CPU is enough) that checkpoints model and optimizer with berth.

    pip install torch   # or the small CPU-only build from PyTorch's own CPU wheel index
    python examples/train_torch.py --dir /tmp/ckpt-torch --steps 100

In a StatefulSet rendered by berth, run it as ``berth run -- python train_torch.py``: the
rendezvous env (MASTER_ADDR, RANK, WORLD_SIZE, ...) is set and the checkpoint directory,
archive and metrics port come from the pod's env. With several ranks, initialise
torch.distributed before restore() so the ranks agree on the step.
"""

from __future__ import annotations

import argparse

import torch

from berth.checkpoint import CheckpointManager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="checkpoint directory (default: BERTH_CHECKPOINT_DIR)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(256, 32)
    y = x @ torch.randn(32, 1)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)

    with CheckpointManager(args.dir, keep_last=3) as mgr:
        step, state = mgr.restore()
        if step is None:
            step = 0
            print("starting at step 0")
        else:
            assert isinstance(state, dict)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            print(f"resumed from step {step}")
        while step < args.steps:
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % args.every == 0 or step == args.steps:
                # Returns once tensors are copied to host memory; the write overlaps training.
                mgr.save(step, {"model": model.state_dict(), "optimizer": opt.state_dict(), "loss": loss.item()})
                print(f"step {step} loss {loss.item():.5f}")
    print(f"done at step {step}")


if __name__ == "__main__":
    main()
