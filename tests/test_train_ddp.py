"""The three trainers under a real two-process torchrun (gloo, CPU): after two steps both ranks
hold the same generator and discriminator weights (DDP averages the gradients; each rank saw
different data, so without DDP they would differ), and only rank 0 wrote checkpoints.

This file is also the worker torchrun runs: ``python tests/test_train_ddp.py OUT``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

_BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _record_saves(rank: int, log: Path) -> None:
    """Every trainer's checkpoint writes, appended to ``log`` as ``<rank> <file>``."""
    from dance_reenact.training import b2f, face, p2b

    def spy(real, path_arg):
        def wrapped(*args, **kwargs):
            with open(log, "a") as fh:
                fh.write(f"{rank} {Path(args[path_arg]).name}\n")
            return real(*args, **kwargs)

        return wrapped

    for mod in (p2b, b2f, face):
        mod.save_model = spy(mod.save_model, 1)  # (module, path)
        mod.save_train_state = spy(mod.save_train_state, 0)  # (path, state)


def _worker(out: Path) -> None:
    """Run each trainer for two tiny steps in this process (one of torchrun's two) and dump
    its weights to ``<out>/rank<r>_<trainer>.pt``."""
    import torch.distributed as dist

    from dance_reenact.training import b2f, face, p2b

    dist.init_process_group("gloo")  # joined here: the trainers use it and leave it open
    rank = dist.get_rank()
    _record_saves(rank, out / f"saves_rank{rank}.txt")

    def dump(name: str, **nets: torch.nn.Module) -> None:
        torch.save({k: {n: t.detach().cpu() for n, t in m.state_dict().items()}
                    for k, m in nets.items()}, out / f"rank{rank}_{name}.pt")

    t = face.FaceRefineTrainer(face.TrainConfig(
        out=out / "face", steps=2, batch=2, size=16, ngf=4, n_down=2, embed_dim=4,
        perceptual="random", log_every=1, save_every=0, w_adv=0.5, device="cpu"))
    t.fit()
    dump("face", G=t.net, D=t.disc)
    t2 = p2b.P2BTrainer(p2b.P2BTrainConfig(
        out=str(out / "p2b"), steps=2, batch_size=2, work_height=32, work_width=20, ngf=4,
        n_down=2, n_res=1, ndf=4, d_layers=1, synthetic_pairs=16, log_every=1, save_every=0,
        device="cpu"))
    t2.fit()
    dump("p2b", G=t2.G, D=t2.D)
    res = b2f.train(b2f.B2FTrainConfig(
        out=str(out / "b2f"), synthetic_length=8, steps=2, batch_size=2, n_up=3, ngf=8,
        fc_channels=16, spade_hidden=8, ndf=8, d_layers=2, encoder="random", crop_size=32,
        vgg="none", face_net="none", num_workers=0, save_every=0, device="cpu"))
    dump("b2f", G=res["raw_generator"], G_ema=res["generator"], D=res["discriminator"])
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_end_identical_and_only_rank_zero_saves(tmp_path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for name in ("face", "p2b", "b2f"):
        r0 = torch.load(tmp_path / f"rank0_{name}.pt", weights_only=True)
        r1 = torch.load(tmp_path / f"rank1_{name}.pt", weights_only=True)
        for net, state in r0.items():
            # every parameter and buffer, except BatchNorm's running statistics: DDP
            # broadcasts buffers from rank 0 at the start of each forward, so after the last
            # step each rank's hold that step's update from its own batch
            compared = [k for k in state if not k.endswith(_BN_STATS)]
            assert any(k.endswith("weight_orig") or k.endswith("weight") for k in compared)
            for k in compared:
                assert torch.equal(state[k], r1[net][k]), f"{name} {net} {k} differs"
    # rank 0 wrote every checkpoint, rank 1 none
    assert not (tmp_path / "saves_rank1.txt").exists()
    saved = (tmp_path / "saves_rank0.txt").read_text().split()
    for f in ("face_refine.safetensors", "face_refine_state.pt", "p2b_generator.safetensors",
              "p2b_train_state.pt", "b2f_last.safetensors", "train_state.pt"):
        assert f in saved, saved
    assert (tmp_path / "face" / "face_refine.safetensors").is_file()
    lines = (tmp_path / "face" / "losses.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in lines] == [1, 2]  # one log line per step: rank 0's


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
