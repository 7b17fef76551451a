"""`iga gpu-slot`: run a command on its own free GPU slot(s) (see iga.gpu_slots)."""

from __future__ import annotations


def _gpu_slot(args) -> int:
    from ..gpu_slots import run_from_args

    return run_from_args(args)


def _gpu_count(args) -> int:
    from ..gpu_slots import gpu_count

    print(gpu_count())
    return 0


def register(sub) -> None:
    from ..gpu_slots import add_arguments

    p = sub.add_parser(
        "gpu-slot",
        help="take free GPU slot(s), set CUDA_VISIBLE_DEVICES, exec COMMAND",
        description="Take K free GPU slots (fcntl locks, one per GPU), set CUDA_VISIBLE_DEVICES "
        "to them and exec COMMAND, which holds the slots until it ends. "
        "Usage: iga gpu-slot --gpus K [--label CELL] -- COMMAND ...",
    )
    add_arguments(p)
    p.set_defaults(func=_gpu_slot)

    p = sub.add_parser("gpu-count", help="print how many GPUs local jobs may use (for --resources gpu=N)")
    p.set_defaults(func=_gpu_count)
