"""Voxelisation cost at paper scale: time and peak memory of mesh → 512³ occupancy.

The Stanford scans cannot be downloaded here, so the default case is a procedural torus with as
many faces as the large scans (Thai statue ≈ 10M, Lucy ≈ 28M). Each case runs in a fresh child
process so that its peak RSS is its own. Optionally (``--mesh``) a real PLY(.gz) is timed too, and
``--roundtrip-mat`` checks the convention against a precomputed WIRE/FR-INR volume.

    python benchmarks/voxelize.py                         # 10M and 28M faces at 512³
    python benchmarks/voxelize.py --faces 2e6 --resolution 256
    python benchmarks/voxelize.py --mesh data/stanford/thai/extracted/xyzrgb_statuette.ply
    python benchmarks/voxelize.py --faces 1e7 --make-ply /tmp/t10m.ply [--ascii]  # a scan-sized test PLY
    python benchmarks/voxelize.py --mesh /tmp/t10m.ply --resolution 32    # mostly PLY load time
    # sic: the zip member's name starts with a space
    python benchmarks/voxelize.py --roundtrip-mat "data/occupancy/mat/dragon/ dragon.mat"

Round trip: the .mat volume → marching-cubes mesh (in its own index frame) → our voxelisation at
the same resolution → IoU with the .mat, for ACORN's convention and two alternatives. It checks
centring and the isotropic scaling (per-axis scaling fails) but cannot separate linspace(-1, 1)
from cell-centred samples (the marching-cubes surface lies half a voxel outside the occupied
centres, which absorbs exactly that difference), nor the axis order of the original scans (the
mesh is built in the file's own frame). What does separate the samplings is the file itself: with
linspace(-1, 1) the scan's extreme vertices lie exactly on the first / last grid plane, so the
longest axis is occupied from index 1 to R-2 (dragon.mat: 1..510).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _torus(faces: str):
    from iga.data.procedural_shape import torus_mesh

    n = int(float(faces))
    n_minor = max(8, int(math.sqrt(n / 2 / 2.8)))
    n_major = max(8, int(round(n / 2 / n_minor)))
    return torus_mesh(n_major, n_minor), f"torus {n_major}x{n_minor}"


def make_ply(args) -> dict:
    """Write the torus of ``--faces`` as a PLY (binary, or ASCII with ``--ascii``; gzipped for .gz),
    the stand-in for a Stanford scan of that size when timing ``--mesh`` loads."""
    import gzip
    import shutil
    from pathlib import Path

    from iga.data.voxelize import write_ply

    (v, f), name = _torus(args.faces[-1])
    out = Path(args.make_ply)
    plain = out.with_name(out.name[:-3]) if out.name.endswith(".gz") else out
    t0 = time.perf_counter()
    write_ply(plain, v, f, text=args.ascii)
    t_write = time.perf_counter() - t0
    if plain != out:
        with open(plain, "rb") as src, gzip.open(out, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
        plain.unlink()
    return {
        "case": name,
        "faces": len(f),
        "vertices": len(v),
        "out": str(out),
        "format": "ascii" if args.ascii else "binary_little_endian",
        "write_ply_s": round(t_write, 2),
        "mb": round(out.stat().st_size / 2**20, 1),
    }


def run_case(args) -> dict:
    from iga.data.voxelize import read_ply, voxelize

    t0 = time.perf_counter()
    if args.mesh:
        v, f = read_ply(args.mesh)
        name = args.mesh
    else:
        (v, f), name = _torus(args.faces[-1])
    t_load = time.perf_counter() - t0
    mem_after_load = _peak_mb()
    t1 = time.perf_counter()
    occ = voxelize(v, f, args.resolution, method=args.method)
    t_vox = time.perf_counter() - t1
    out = {
        "case": name,
        "faces": int(len(f)),
        "vertices": int(len(v)),
        "resolution": args.resolution,
        "method": args.method,
        "load_or_generate_s": round(t_load, 2),
        "voxelize_s": round(t_vox, 2),
        "peak_rss_mb": round(_peak_mb(), 1),
        "rss_after_load_mb": round(mem_after_load, 1),
        "occupied_fraction": round(float(occ.mean()), 5),
    }
    if not args.mesh:  # the torus has a known volume: (2/(R-1))³ · voxels ≈ 2π²·R·r² (normalised)
        from iga.data.procedural_shape import mesh_volume
        from iga.data.voxelize import normalize_acorn

        vn = normalize_acorn(v)[0]
        h = 2.0 / (args.resolution - 1)
        out["volume_rel_error"] = round(float(occ.sum() * h**3 / mesh_volume(vn, f) - 1), 5)
    return out


def roundtrip(args) -> dict:
    """.mat volume → marching-cubes mesh → our voxelisation, under ACORN's convention and under two
    alternatives (see the module docstring for what this can and cannot tell apart)."""
    import numpy as np
    from skimage.measure import marching_cubes

    from iga.data.voxelize import load_mat_volume, normalize_acorn, voxelize
    from iga.metrics import iou

    vol = load_mat_volume(args.roundtrip_mat)
    R = vol.shape[0]
    t0 = time.perf_counter()
    verts, faces, _, _ = marching_cubes(np.pad(vol, 1).astype(np.float32), 0.5)
    verts -= 1.0
    t_mc = time.perf_counter() - t0
    vn = normalize_acorn(verts)[0]
    lo, hi = verts.min(0), verts.max(0)
    variants = {
        "acorn: centre bbox, longest half-extent 1, linspace(-1,1)": vn,
        "cell-centred samples ((i+0.5)/R)": vn * (R - 1) / R,
        "each axis scaled to [-1,1]": (verts - (lo + hi) / 2) / ((hi - lo) / 2),
    }
    res = {
        "mat": args.roundtrip_mat,
        "shape": list(vol.shape),
        "mc_faces": int(len(faces)),
        "marching_cubes_s": round(t_mc, 2),
        "iou_by_convention": {},
    }
    nz = [np.flatnonzero(vol.any(axis=tuple(i for i in range(3) if i != a))) for a in range(3)]
    res["mat_occupied_index_range"] = [[int(z[0]), int(z[-1])] for z in nz]
    for name, v in variants.items():
        t1 = time.perf_counter()
        occ = voxelize(v, faces, R, normalize=False)
        res.setdefault("voxelize_s", round(time.perf_counter() - t1, 2))
        res["iou_by_convention"][name] = round(iou(occ.view(np.uint8), vol.view(np.uint8)), 5)
    res["peak_rss_mb"] = round(_peak_mb(), 1)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", action="append", help="torus face counts (default: 1e7 and 2.8e7)")
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--method", default="winding", choices=("winding", "parity"))
    p.add_argument("--mesh", help="time this PLY(.gz) instead of a torus")
    p.add_argument("--make-ply", help="only write the (last) --faces torus to this PLY(.gz) and report")
    p.add_argument("--ascii", action="store_true", help="with --make-ply: ASCII instead of binary")
    p.add_argument("--roundtrip-mat", help="a WIRE/FR-INR .mat volume to check the convention against")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.roundtrip_mat:
        print(json.dumps(roundtrip(args)))
        return 0
    if args.make_ply:
        args.faces = args.faces or ["1e7"]
        print(json.dumps(make_ply(args)))
        return 0
    if args.child:
        print(json.dumps(run_case(args)))
        return 0
    cases = [["--mesh", args.mesh]] if args.mesh else [["--faces", f] for f in (args.faces or ["1e7", "2.8e7"])]
    print(f"{'case':<28}{'faces':>11}{'R':>5}{'load s':>8}{'voxelize s':>11}{'peak MB':>9}{'vol err':>9}")
    for extra in cases:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--resolution",
            str(args.resolution),
            "--method",
            args.method,
        ] + extra
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print(
            f"{d['case'][-27:]:<28}{d['faces']:>11,}{d['resolution']:>5}{d['load_or_generate_s']:>8}"
            f"{d['voxelize_s']:>11}{d['peak_rss_mb']:>9}{d.get('volume_rel_error', ''):>9}"
        )
        print(json.dumps(d), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
