"""Display order, labels, number formats and the wording of missing values: every table reads them here."""

from __future__ import annotations

import re

from .. import metrics

ARCH_ORDER = ("ReLU", "PE", "SIREN", "NeRF")
METHOD_ORDER = ("vanilla", "FR", "BN", "IGA")
TOY_METHOD_ORDER = ("vanilla", "NTK", "eNTK", "IGA")  # the toy study's columns (Figs. 1, 6)
TASK_ORDER = ("toy", "image", "image_ablation", "occupancy", "nerf")  # the paper's order: §5, §6.1, App. B, §6.2, §6.3
METRIC_LABELS = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "lpips": "LPIPS ↓", "iou": "IoU ↑"}
LOWER_IS_BETTER = ("lpips",)
DIGITS = {"psnr": 2, "lpips": 3}  # other metrics: 4, as the paper prints SSIM and IoU

LPIPS_OFFLINE = "missing: " + metrics.LPIPS_OFFLINE
IOU_ZERO = "IoU 0: no predicted voxel overlaps the shape at the best state (prediction empty or disjoint)"
# raw reasons older metrics.json files carry for the same cause: worded once, here
_OFFLINE = re.compile(r"could not fetch alexnet|AlexNet weights not found", re.I)


def order(seq, preferred) -> int:
    """Sort key: known names in the paper's order, others after them."""
    return preferred.index(seq) if seq in preferred else len(preferred)


def arch_key(arch: str) -> tuple:
    return order(arch, ARCH_ORDER), arch


def method_key(method: str) -> tuple:
    return order(method, METHOD_ORDER), method


def row_label(arch: str, method: str) -> str:
    return arch if method == "vanilla" else f"{arch}+{method}"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def number(x) -> float | None:
    """A table or record value as a number; None for no value (empty text, None or NaN)."""
    if x is None or x == "":
        return None
    v = float(x)
    return None if v != v else v  # NaN: pandas' empty cell


def fmt(value, metric: str = "", digits: int | None = None) -> str:
    """A value as the paper prints it; "—" for no value."""
    if value in ("", None):
        return "—"
    return f"{float(value):.{digits if digits is not None else DIGITS.get(metric, 4)}f}"


def reason(note: str) -> str:
    """A missing value's note, short: the offline LPIPS case in one sentence (its full error stays in the log)."""
    note = " ".join(str(note).split())
    if _OFFLINE.search(note):
        head = note.split("missing:", 1)[0]  # keep "missing for 2/3 items: "
        return head + metrics.LPIPS_OFFLINE if head else LPIPS_OFFLINE
    return note


def cause(note: str) -> str:
    """:func:`reason` without its leading "missing: ", for a note that begins "missing for N/M …: " itself."""
    return reason(note).removeprefix("missing: ")
