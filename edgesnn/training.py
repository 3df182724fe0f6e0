"""Training of any model pack on the training region, with model selection on validation.

A pack's network may change how it is trained without a training loop of its own, through
optional members the loop looks for (see edgesnn/registry.py for the whole pack interface):
- `training_loss(x, y, criterion, progress) -> (loss, logits)`: its own objective (a teacher,
  a reversed pass, early classifiers...); `progress` runs from 0 to 1 over training.
- `train_classes`: class names to sample training windows from (an anomaly model sees only
  normal data); `validation_metrics(x, y) -> dict` with a `selection_score` (higher is better)
  replaces the accuracy-based model selection.

Any pack without its own objective can also learn from a teacher (`TrainConfig.teacher`, `edgesnn
train --teacher`): a trained checkpoint of the same task, often a costlier network (more
timesteps), whose softened outputs on the same augmented batch are a second target beside the
labels (losses.distill). The teacher costs training time only; the network that ships is unchanged.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgesnn.dataset import TaskData, load_task
from edgesnn.errors import EdgesnnError
from edgesnn.evaluation import predict_labels
from edgesnn.folders import require_file
from edgesnn.labels import TASKS
from edgesnn.losses import distill
from edgesnn.paths import repath
from edgesnn.registry import create_model
from edgesnn.signal import add_noise


@dataclass
class TrainConfig:
    pack: str = "mra_snn"
    data: str = "../shared/datasets/cwru"
    task: str = "cwru10"
    seed: int = 0
    epochs: int = 60
    steps_per_epoch: int = 100
    batch_size: int = 64
    lr: float = 3e-3
    timesteps: int = 1  # the default model's (README: spike bits x timesteps)
    bits: int = 2
    window: int = 2048
    noise: bool = True  # additive white noise augmentation
    snr_range_db: tuple[float, float] = (-14.0, 6.0)
    noise_fraction: float = 0.75  # share of each batch that gets noise; the rest stays clean
    speed_jitter: float = 0.0  # random time stretch of training windows, as a fraction of speed
    path_share: float = 0.0  # share of fault windows re-pathed through random resonances (edgesnn.paths)
    path_until: float = 1.0  # re-path only in this first share of the steps; the rest train on the drive end's path
    loads: list[int] | None = None
    sizes: list[float] | None = None
    threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    device: str = "cpu"  # a torch device ("cuda") for studies on a GPU machine; the product trains on CPU
    teacher: str | None = None  # checkpoint of the same task to distill from (knowledge distillation)
    extra: dict = field(default_factory=dict)  # pack-specific keyword arguments


def _add_batch_noise(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    lo, hi = cfg.snr_range_db
    snr = lo + (hi - lo) * torch.rand(n, 1, 1, generator=gen)
    power = x.pow(2).mean(dim=-1, keepdim=True)
    noise = torch.randn(x.shape, generator=gen) * torch.sqrt(power / 10 ** (snr / 10))
    keep_clean = torch.rand(n, 1, 1, generator=gen) >= cfg.noise_fraction
    return torch.where(keep_clean, x, x + noise)


def torch_predict(model: nn.Module):
    """numpy [N, 1, L] -> numpy logits, in eval mode without gradients."""

    device = next(model.parameters()).device

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x)).to(device)).cpu().numpy()

    return predict


def _validation_score(model: nn.Module, val_x: np.ndarray, val_y: np.ndarray) -> dict:
    """Clean and -6 dB accuracy on the validation region (never the test region), or the pack's
    own validation metrics; `selection_score` picks the epoch kept."""
    model.eval()
    if hasattr(model, "validation_metrics"):
        with torch.no_grad():
            row = model.validation_metrics(val_x, val_y)
    else:
        predict = torch_predict(model)
        clean = float(np.mean(predict_labels(predict, val_x) == val_y))
        noisy_x = add_noise(val_x, -6.0, np.random.default_rng(1234))
        noisy = float(np.mean(predict_labels(predict, noisy_x) == val_y))
        # Clean and noisy validation together; later epochs win ties.
        row = {"val_accuracy": clean, "val_snr_-6db_accuracy": noisy, "selection_score": clean + noisy}
    model.train()
    return row


def _loss(model: nn.Module, x, y, criterion, progress: float, teacher: nn.Module | None = None):
    if hasattr(model, "training_loss"):
        return model.training_loss(x, y, criterion, progress)
    logits = model(x)
    if teacher is None:
        return criterion(logits, y), logits
    with torch.no_grad():
        soft = teacher(x)
    return criterion(logits, y) + distill(logits, soft), logits


def _load_teacher(cfg: TrainConfig) -> tuple[nn.Module, list[str]]:
    """The teacher network (eval mode, frozen) and its classes; refused unless it was trained on
    the same task and window."""
    teacher, ckpt = load_checkpoint(Path(cfg.teacher))
    tc = ckpt["config"]
    if list(getattr(teacher, "output_names", ["logits"])) != ["logits"]:
        raise EdgesnnError(f"{cfg.teacher}: its {tc['pack']} model scores windows; a teacher must classify them")
    if (tc.get("task"), tc["window"]) != (cfg.task, cfg.window):
        raise EdgesnnError(f"{cfg.teacher}: a teacher for task {tc.get('task')} with {tc['window']}-sample windows; "
                           f"this training is {cfg.task} with {cfg.window}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(cfg.device).eval(), ckpt["classes"]


def train(cfg: TrainConfig, progress=None, data: TaskData | None = None) -> dict:
    """Train `cfg.pack`; returns the checkpoint dict (best validation epoch) with its history.

    `progress(epoch, epochs, row)` is called after each epoch.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # the teacher first: building it draws random initial weights, which must not change the student's
    teacher, teacher_classes = _load_teacher(cfg) if cfg.teacher else (None, None)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    data = data or load_task(Path(cfg.data), cfg.task, cfg.window, cfg.loads, cfg.sizes)
    if teacher is not None and teacher_classes != list(data.classes):
        raise EdgesnnError(f"{cfg.teacher}: the teacher's classes {teacher_classes} are not this training's "
                           f"{list(data.classes)}")
    model = create_model(cfg.pack, n_classes=len(data.classes), window=cfg.window,
                         timesteps=cfg.timesteps, bits=cfg.bits, **cfg.extra).to(cfg.device)
    if teacher is not None and hasattr(model, "training_loss"):
        raise EdgesnnError(f"pack {cfg.pack} trains with its own objective; --teacher is for packs without one")
    if cfg.path_share and set(getattr(model, "train_classes", ())) == {"normal"}:  # the card would claim it
        raise EdgesnnError(f"pack {cfg.pack} trains on normal windows only, and --path-share re-paths fault "
                           "windows: it would change nothing")
    val = data.windows("val")
    normal = data.classes.index("normal") if "normal" in data.classes else None  # never re-pathed
    train_classes = ([data.classes.index(c) for c in model.train_classes]
                     if hasattr(model, "train_classes") else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    total = cfg.epochs * cfg.steps_per_epoch
    last_pathed = cfg.path_until * total if cfg.path_share else 0  # steps below it are re-pathed
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)

    history, best, best_key, best_epoch = [], None, None, 0
    start = time.perf_counter()
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        losses, correct, seen = [], 0, 0
        for step in range(cfg.steps_per_epoch):
            xb, yb = data.sample_train(cfg.batch_size, rng, cfg.speed_jitter, train_classes)
            if (epoch - 1) * cfg.steps_per_epoch + step < last_pathed:
                repath(xb, yb, cfg.path_share, rng, normal)
            x = torch.from_numpy(xb)[:, None, :]
            y = torch.from_numpy(yb)
            if cfg.noise:
                x = _add_batch_noise(x, cfg, gen)
            x, y = x.to(cfg.device), y.to(cfg.device)
            progress_share = ((epoch - 1) * cfg.steps_per_epoch + step) / total
            loss, logits = _loss(model, x, y, loss_fn, progress_share, teacher)
            if not torch.isfinite(loss):  # nothing after this step would mean anything
                raise EdgesnnError(f"training diverged at epoch {epoch}, step {step + 1}: the loss is "
                                   f"{loss.item()}; try a smaller --lr (now {cfg.lr:g})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if logits is not None:
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
        row = {"epoch": epoch, "loss": float(np.mean(losses)),
               **({"train_accuracy": correct / seen} if seen else {}),
               **_validation_score(model, val.x, val.y), "seconds": time.perf_counter() - start}
        history.append(row)
        key = row["selection_score"]
        if best_key is None or key >= best_key:
            best_key, best, best_epoch = key, copy.deepcopy(model.state_dict()), epoch
        if progress:
            progress(epoch, cfg.epochs, row)
    model.load_state_dict(best)
    model.eval()
    if cfg.device != "cpu":
        best = {k: v.cpu() for k, v in best.items()}
    return {
        "format": "edgesnn-checkpoint/1",
        "config": asdict(cfg),
        "classes": list(data.classes),
        "state_dict": best,
        "history": history,
        "best_epoch": best_epoch,
        "train_seconds": time.perf_counter() - start,
    }


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint written by `edgesnn train`, in eval mode."""
    path = require_file(path, "checkpoint")
    try:  # weights_only: a checkpoint is data (tensors, numbers, strings); unpickling code would run it
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EdgesnnError(f"{path}: not a readable checkpoint, or one holding more than tensors and "
                           f"plain values ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "edgesnn-checkpoint/1":
        raise EdgesnnError(f"{path}: not an edgesnn checkpoint")
    cfg = ckpt.get("config")
    if (not isinstance(cfg, dict) or not all(k in cfg for k in ("pack", "task", "window", "timesteps", "bits", "seed"))
            or not isinstance(ckpt.get("classes"), list) or not isinstance(ckpt.get("state_dict"), dict)
            or not isinstance(ckpt.get("history", []), list)):
        raise EdgesnnError(f"{path}: an edgesnn checkpoint without its config, classes, history or weights")
    # timesteps 0: a pack that sets its own per stage (ssnn); bits 0: a network without spikes
    bad = [k for k in ("window", "timesteps", "bits", "seed") if isinstance(cfg[k], bool)
           or not isinstance(cfg[k], int) or cfg[k] < (1 if k == "window" else 0)]
    if bad or not isinstance(cfg.get("extra", {}), dict) or not all(isinstance(c, str) for c in ckpt["classes"]):
        raise EdgesnnError(f"{path}: its config holds impossible values ({', '.join(f'{k}={cfg[k]!r}' for k in bad) or 'extra or classes'})")
    if cfg["task"] in TASKS and list(ckpt["classes"]) != list(TASKS[cfg["task"]]):
        raise EdgesnnError(f"{path}: its classes are not those of its task {cfg['task']} ({', '.join(TASKS[cfg['task']])})")
    for name, tensor in ckpt["state_dict"].items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise EdgesnnError(f"{path}: weights {name} hold NaN or infinite values (did training diverge?)")
    try:
        return model_from_checkpoint(ckpt), ckpt
    except EdgesnnError as exc:  # its pack is not installed here, say
        raise EdgesnnError(f"{path}: {exc}") from None
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise EdgesnnError(f"{path}: its weights do not fit the {cfg['pack']} network it names "
                           f"({str(exc).splitlines()[0][:160]})") from None


def model_from_checkpoint(ckpt: dict, device: str = "cpu") -> nn.Module:
    """The trained network of a checkpoint dict (from train() or a file), in eval mode."""
    cfg = ckpt["config"]
    model = create_model(cfg["pack"], n_classes=len(ckpt["classes"]), window=cfg["window"],
                         timesteps=cfg["timesteps"], bits=cfg["bits"], **cfg.get("extra", {}))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()
