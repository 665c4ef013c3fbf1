"""Training P2B (paper §3.1, appendix C): ``reenact train p2b``.

Generator :class:`~..models.p2b.P2BGenerator`; two PatchGAN discriminators at full and half
resolution conditioned on the driver's stick figure + DensePose; LSGAN, L1 feature matching
(λ_D = 40), cross-entropy on the labels (λ_CE = 1); Adam 2e-4, betas (0.5, 0.999).

Multi-GPU / multi-process through ``torchrun`` (torch.distributed DDP; gloo on CPU, NCCL on
CUDA; see training/common.py): ``torchrun --nproc_per_node=2 -m dance_reenact.cli train p2b
...``; ``--batch-size`` is per process. Rank 0 writes

* ``<out>/p2b_generator.safetensors`` (loadable by the P2B loader node; config in metadata),
* ``<out>/p2b_train_state.pt`` (discriminator, optimisers, step: ``--resume`` continues),
* ``<out>/losses.csv`` (one row per logged step).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..models.core.schema import NUM_LABELS
from ..models.io.loading import load_model, save_model
from ..models.metrics.scores import parsing_similarity
from ..models.networks.p2b import (
    DriverFrame,
    P2BGenerator,
    one_hot_labels,
    p2b_input,
    predict_parsing,
)
from .augment import ParsingAugment, PoseAugment
from .common import (
    barrier,
    load_train_state,
    rank_logger,
    save_train_state,
    setup_distributed,
    teardown_distributed,
    wrap_ddp,
)
from .gan import DiscOutput, MultiscaleDiscriminator, adversarial_loss, feature_matching_loss

logger = logging.getLogger(__name__)

GENERATOR_FILE = "p2b_generator.safetensors"
STATE_FILE = "p2b_train_state.pt"
LOSS_FILE = "losses.csv"


@dataclass
class P2BTrainConfig:
    """Everything ``train p2b`` needs; defaults follow the paper where it gives a number."""

    out: str = "runs/p2b"
    data: str = "synthetic"  # "synthetic" or a VIP-layout folder
    steps: int = 1000
    batch_size: int = 8
    work_height: int = 512
    work_width: int = 320
    ngf: int = 64
    n_down: int = 4
    n_res: int = 9
    ndf: int = 64
    d_layers: int = 3
    num_d: int = 2
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_gan: float = 1.0
    lambda_fm: float = 40.0  # the paper's λ_D
    lambda_ce: float = 1.0
    rotate: float = 10.0
    scale: float = 0.1
    stretch: float = 0.15
    hand_aug: float = 0.2
    jitter: float = 0.0
    limb_scale: float = 0.0
    part_dropout: float = 0.0
    synthetic_pairs: int = 100_000
    synthetic_upper: float = 0.2
    max_gap: int = 250
    split: str = ""
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    save_every: int = 500
    eval_pairs: int = 0
    resume: bool = False
    device: str = "auto"


def build_dataset(cfg: P2BTrainConfig, *, seed_offset: int = 0) -> Dataset:
    pose_aug = PoseAugment(cfg.jitter, cfg.limb_scale, cfg.part_dropout)
    parsing_aug = ParsingAugment(cfg.rotate, cfg.scale, cfg.stretch, cfg.hand_aug)
    work = (cfg.work_height, cfg.work_width)
    if cfg.data == "synthetic":
        from .data import SyntheticPairs

        # small working sizes render at twice the size so the registration crop has detail
        k = 2 if cfg.work_height < 256 else 1
        return SyntheticPairs(cfg.synthetic_pairs, work_hw=work,
                              render_hw=(cfg.work_height * k, cfg.work_width * k),
                              seed=cfg.seed + seed_offset, upper=cfg.synthetic_upper,
                              pose_aug=pose_aug, parsing_aug=parsing_aug)
    from .data import VIPPairs

    return VIPPairs(cfg.data, split=cfg.split or None, max_gap=cfg.max_gap, work_hw=work,
                    seed=cfg.seed + seed_offset, pose_aug=pose_aug, parsing_aug=parsing_aug)


class _Logits(nn.Module):
    """The generator's pre-sigmoid output as ``forward`` (what DDP wraps)."""

    def __init__(self, g: P2BGenerator) -> None:
        super().__init__()
        self.g = g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g.logits(x)


def _split(preds: DiscOutput, n: int) -> tuple[DiscOutput, DiscOutput]:
    """Discriminator outputs on [fake; real] -> (outputs on fake, outputs on real)."""
    return [[t[:n] for t in p] for p in preds], [[t[n:] for t in p] for p in preds]


class P2BTrainer:
    """One process's share of P2B training (rank 0 saves and logs)."""

    def __init__(self, cfg: P2BTrainConfig, dataset: Dataset | None = None) -> None:
        self.cfg = cfg
        self.ctx = setup_distributed(cfg.device)
        self.world, self.rank, self.device = self.ctx.world_size, self.ctx.rank, self.ctx.device
        self.log = rank_logger(logger, self.ctx)
        torch.manual_seed(cfg.seed + 1000 * self.rank)
        self.out = Path(cfg.out)
        self.G = P2BGenerator(in_channels=NUM_LABELS + 6, out_channels=NUM_LABELS, ngf=cfg.ngf,
                              n_down=cfg.n_down, n_res=cfg.n_res, work_height=cfg.work_height,
                              work_width=cfg.work_width).to(self.device)
        # pix2pixHD's discriminators (InstanceNorm, last conv stride 1), conditioned on the
        # driver's stick figure + DensePose
        self.D = MultiscaleDiscriminator(in_channels=NUM_LABELS + 6, num_d=cfg.num_d,
                                         ndf=cfg.ndf, n_layers=cfg.d_layers).to(self.device)
        self.step = 0
        self._logged = False
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        if cfg.resume:
            self._resume()
        self.g_train = wrap_ddp(_Logits(self.G), self.ctx)
        self.d_train = wrap_ddp(self.D, self.ctx)
        self.dataset = dataset if dataset is not None else build_dataset(cfg)

    # -- checkpoints --------------------------------------------------------------------------

    def _resume(self) -> None:
        gpath, spath = self.out / GENERATOR_FILE, self.out / STATE_FILE
        if not gpath.is_file() or not spath.is_file():
            raise FileNotFoundError(f"--resume: {gpath} and {spath} must both exist")
        g = load_model(gpath, expected_arch="P2BGenerator")
        if g.config != self.G.config:
            raise ValueError(f"--resume: the checkpoint's config {g.config} differs from this "
                             f"run's {self.G.config}")
        self.G.load_state_dict(g.state_dict())
        state = load_train_state(spath, device=self.device)
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.log.info("resumed from %s at step %d", self.out, self.step)

    def save(self) -> Path:
        """Write the generator and the training state (call on rank 0)."""
        meta = {"step": str(self.step), "train_config": json.dumps(asdict(self.cfg))}
        path = save_model(self.G, self.out / GENERATOR_FILE, extra_metadata=meta)
        save_train_state(self.out / STATE_FILE,
                         {"discriminator": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                          "opt_d": self.opt_d.state_dict(), "step": self.step})
        return path

    # -- training -------------------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        sampler = None
        if self.world > 1:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(self.dataset, num_replicas=self.world, rank=self.rank,
                                         shuffle=True, seed=self.cfg.seed)
        return DataLoader(self.dataset, batch_size=self.cfg.batch_size, shuffle=sampler is None,
                          sampler=sampler, num_workers=self.cfg.num_workers, drop_last=True,
                          generator=torch.Generator().manual_seed(self.cfg.seed + self.step))

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        src = batch["source"].to(self.device)
        stick = batch["stick"].to(self.device)
        iuv = batch["iuv"].to(self.device)
        tgt = batch["target"].to(self.device)
        self.G.train()
        self.D.train()
        n = src.shape[0]
        logits = self.g_train(p2b_input(src, stick, iuv))
        fake = torch.sigmoid(logits)
        cond = torch.cat([stick, iuv], dim=1)
        real_in = torch.cat([cond, one_hot_labels(tgt)], dim=1)
        losses: dict[str, float] = {}
        use_gan = cfg.lambda_gan > 0 or cfg.lambda_fm > 0
        if use_gan:
            # one discriminator pass per step on [fake; real] (InstanceNorm is per sample)
            self.opt_d.zero_grad(set_to_none=True)
            pred = self.d_train(torch.cat([torch.cat([cond, fake.detach()], dim=1), real_in]))
            pred_fake, pred_real = _split(pred, n)
            loss_d = 0.5 * (adversarial_loss(pred_fake, real=False, mode="lsgan")
                            + adversarial_loss(pred_real, real=True, mode="lsgan"))
            loss_d.backward()
            self.opt_d.step()
            losses["d"] = float(loss_d.detach())
        self.opt_g.zero_grad(set_to_none=True)
        loss_ce = F.cross_entropy(logits, tgt)
        loss_g = cfg.lambda_ce * loss_ce
        losses["ce"] = float(loss_ce.detach())
        if use_gan:
            pred = self.d_train(torch.cat([torch.cat([cond, fake], dim=1), real_in]))
            pred_fake, pred_real = _split(pred, n)
            loss_gan = adversarial_loss(pred_fake, real=True, mode="lsgan",
                                        for_discriminator=False)
            # pix2pixHD's weights: 4 / (n_layers + 1) per layer, 1 / num_D per discriminator
            loss_fm = feature_matching_loss(pred_fake, pred_real,
                                            layer_weight=4.0 / (cfg.d_layers + 1))
            loss_g = loss_g + cfg.lambda_gan * loss_gan + cfg.lambda_fm * loss_fm
            losses["g_gan"] = float(loss_gan.detach())
            losses["fm"] = float(loss_fm.detach())
        loss_g.backward()
        self.opt_g.step()
        losses["g"] = float(loss_g.detach())
        return losses

    def fit(self, steps: int | None = None) -> Path | None:
        """Train until ``cfg.steps`` (or ``steps`` more); returns the generator path (rank 0)."""
        cfg = self.cfg
        end = self.step + steps if steps is not None else cfg.steps
        log_path = self.out / LOSS_FILE
        writer = None
        fh = None
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            # a fresh run starts a new log; a resumed run or a second fit() call appends
            new = not log_path.is_file() or not (cfg.resume or self._logged)
            fh = open(log_path, "w" if new else "a", newline="")  # noqa: SIM115
            writer = csv.writer(fh)
            if new:
                writer.writerow(["step", "seconds", "d", "g", "g_gan", "fm", "ce"])
            self._logged = True
        t0 = time.perf_counter()
        epoch = 0
        try:
            while self.step < end:
                loader = self._loader()
                if hasattr(loader.sampler, "set_epoch"):
                    loader.sampler.set_epoch(epoch)  # type: ignore[union-attr]
                for batch in loader:
                    losses = self.train_step(batch)
                    self.step += 1
                    if writer is not None and (self.step % cfg.log_every == 0
                                               or self.step == end):
                        writer.writerow([self.step, f"{time.perf_counter() - t0:.2f}"]
                                        + [f"{losses.get(k, float('nan')):.5f}"
                                           for k in ("d", "g", "g_gan", "fm", "ce")])
                        fh.flush()  # type: ignore[union-attr]
                        self.log.info("step %d %s", self.step,
                                    " ".join(f"{k}={v:.4f}" for k, v in losses.items()))
                    if self.rank == 0 and cfg.save_every and self.step % cfg.save_every == 0:
                        self.save()
                    if self.step >= end:
                        break
                epoch += 1
        finally:
            if fh is not None:
                fh.close()
        barrier(self.ctx)
        if self.rank == 0:
            return self.save()
        return None


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate(model: P2BGenerator | None, pairs: list[tuple[np.ndarray, DriverFrame, np.ndarray]],
             *, device: torch.device | str = "cpu", batch_size: int = 8) -> dict[str, float]:
    """SSIS/SSBS on held-out (p*, driver frame, ground truth) triples, in frame pixels.

    ``model=None`` scores the baseline that copies p* unchanged.
    """
    ssbs, ssis = [], []
    if model is not None:
        model.eval()
    for src, frame, gt in pairs:
        if model is None:
            pred = src
        else:
            pred = next(predict_parsing(model, src, [frame], device=device,
                                        batch_size=batch_size))
        b, i = parsing_similarity(pred[None], gt[None])
        ssbs.append(float(b[0]))
        ssis.append(float(i[0]))
    # pairs where both parsings are empty have no score (NaN): left out, counted
    scored = [k for k, v in enumerate(ssbs) if v == v]
    return {"ssbs": float(np.mean([ssbs[k] for k in scored])) if scored else float("nan"),
            "ssis": float(np.mean([ssis[k] for k in scored])) if scored else float("nan"),
            "pairs": len(pairs), "both_empty": len(pairs) - len(scored)}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 512x320, got {text!r}") from exc
    return h, w


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """``reenact train p2b``."""
    d = P2BTrainConfig()
    p = sub.add_parser("p2b", help="train the pose-to-body network (P2B)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--data", default=d.data, help="'synthetic' or a VIP-layout folder "
                   "(see training/data.py); run `reenact prepare` on a real dataset first")
    p.add_argument("--out", default=d.out, help="run folder (checkpoints, losses.csv)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--work-size", type=_parse_size, default=(d.work_height, d.work_width),
                   help="working resolution HxW (multiple of 2**n_down); default 512x320")
    for name in ("ngf", "n_down", "n_res", "ndf", "d_layers", "num_d", "synthetic_pairs",
                 "max_gap", "seed", "num_workers", "log_every", "save_every", "eval_pairs"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("lr", "beta1", "beta2", "lambda_gan", "lambda_fm", "lambda_ce", "rotate",
                 "scale", "stretch", "hand_aug", "jitter", "limb_scale", "part_dropout",
                 "synthetic_upper"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--split", default="", help="VIP list name (lists/<split>_videos.txt)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--resume", action="store_true", help="continue from <out>'s checkpoint")
    p.set_defaults(func=_cmd_train_p2b)


def config_from_args(args: argparse.Namespace) -> P2BTrainConfig:
    fields = asdict(P2BTrainConfig())
    values = {k: getattr(args, k) for k in fields if hasattr(args, k)}
    values["work_height"], values["work_width"] = args.work_size
    return P2BTrainConfig(**values)


def _cmd_train_p2b(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    trainer = P2BTrainer(cfg)
    try:
        path = trainer.fit()
        if path is not None:
            print(f"generator: {path}")
            if cfg.eval_pairs > 0 and cfg.data == "synthetic":
                from .data import synthetic_eval_pairs

                k = 2 if cfg.work_height < 256 else 1
                pairs = synthetic_eval_pairs(cfg.eval_pairs, render_hw=(cfg.work_height * k,
                                                                        cfg.work_width * k))
                for name, model in (("copy p*", None), ("trained", trainer.G)):
                    r = evaluate(model, pairs, device=trainer.device)
                    print(f"held-out {name:8s} SSIS={r['ssis']:.4f} SSBS={r['ssbs']:.4f}")
    finally:
        teardown_distributed(trainer.ctx)
    return 0
