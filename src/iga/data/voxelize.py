"""Mesh → occupancy volume on an R³ grid, in ACORN's convention, robust to scans with holes.

Convention (ACORN / WIRE / FR-INR volumes): centre the mesh's bounding box at the origin, scale
the longest half-extent to 1, and sample the grid ``linspace(-1, 1, R)`` on every axis. Volumes
are stored with axes (x, y, z) of the mesh — ``vol[i, j, k]`` is the point
``(g[i], g[j], g[k])``, ``g = linspace(-1, 1, R)``.

Inside test — ``method="winding"`` (default): a 6-direction quadrature of the *generalized
winding number*. The winding number of a point p is the average over all ray directions d of the
signed number of surface crossings of the ray from p along d (+1 leaving through a face whose
normal points along d); for a closed, consistently oriented mesh every direction gives the same
integer, for a mesh with holes the directions disagree near the holes and their average is a
smooth, well-behaved estimate. We evaluate the rays along ±x, ±y, ±z for all voxel centres at
once with one scan-line pass per axis (a ray along +a and the opposite ray along −a come from the
same sorted crossings), average the six counts and call a voxel inside when |w| > 1/2 (the
absolute value makes the test independent of a globally inverted orientation).
``method="parity"`` is the classic alternative for meshes with inconsistent orientation: each of
the six rays votes "inside" on an odd number of crossings; inside needs at least 4 of 6 votes.

Robustness: a ray through a shared edge or vertex must count the crossing exactly once. Edge
functions are evaluated with the edge's endpoints in a canonical (lexicographic) order, so two
triangles sharing an edge compute bit-identical values of opposite sign, and points exactly on
an edge belong to the triangle for which that edge is "top-left" (the rasterisation tie rule).

Cost: O(faces + R² · crossings) per axis with numpy, faces processed in chunks; memory is a few
int16 R³ arrays (≈ 0.27 GB each at R = 512) plus the mesh. ``benchmarks/voxelize.py`` measures it.
"""
from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator, Optional, Tuple

import numpy as np
from plyfile import PlyData, PlyElement, PlyElementParseError, PlyParseError

from ..configs import ConfigError
from ..provenance import atomic_file

METHODS = ("winding", "parity")
VOLUME_LAYOUT = "xyz"


# --- PLY (plyfile) ----------------------------------------------------------------------------
FACE_KEYS = ("vertex_indices", "vertex_index")  # both spellings occur in the Stanford scans


class PLYError(ConfigError):
    """A PLY file that is not a readable mesh; the message names the file and what is expected."""


@contextmanager
def _seekable(path: Path) -> Iterator[IO[bytes]]:
    """The file itself, or a .gz decompressed into a temp file: plyfile memory-maps binary data only
    from a real file and otherwise reads record by record (~100× slower on a 10M-face scan)."""
    if not path.name.endswith(".gz"):
        with open(path, "rb") as f:
            yield f
        return
    with gzip.open(path, "rb") as src, tempfile.TemporaryFile() as tmp:
        shutil.copyfileobj(src, tmp, 1 << 24)
        tmp.seek(0)
        yield tmp


def _read_plydata(f: IO[bytes]) -> PlyData:
    # Triangles declared as length 3 let plyfile memory-map the face block (it checks every record's
    # length); polygons or mixed lengths fail that check and are read record by record instead.
    start = f.tell()
    try:
        return PlyData.read(f, known_list_len={"face": {k: 3 for k in FACE_KEYS}})
    except PlyElementParseError as exc:
        if exc.message != "unexpected list length":
            raise
    f.seek(start)
    return PlyData.read(f)


def _flat_lists(column: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(all indices concatenated, length of each list) of a PLY list property read record by record."""
    lengths = np.fromiter((len(p) for p in column), dtype=np.int64, count=len(column))
    flat = np.concatenate(list(column)).astype(np.int64) if lengths.sum() else np.zeros(0, np.int64)
    return flat, lengths


def _fan_triangles(column: np.ndarray) -> np.ndarray:
    """Polygons fan-triangulated in file order: polygon (a, b, c, d) → (a, b, c), (a, c, d)."""
    if column.dtype != object:  # memory-mapped, all of one length (the scans: triangles)
        polys = column.astype(np.int64)
    else:
        flat, lengths = _flat_lists(column)
        if lengths.size and (lengths == lengths[0]).all():
            polys = flat.reshape(len(lengths), -1)
        else:  # mixed polygon sizes
            per_poly = np.maximum(lengths - 2, 0)
            poly = np.repeat(np.arange(len(lengths)), per_poly)
            first = (np.cumsum(lengths) - lengths)[poly]
            j = np.arange(len(poly)) - (np.cumsum(per_poly) - per_poly)[poly] + 1
            return np.stack([flat[first], flat[first + j], flat[first + j + 1]], axis=1)
    n = polys.shape[1] if polys.ndim == 2 else 0
    if n == 3:
        return polys
    fan = [[0, i, i + 1] for i in range(1, n - 1)]
    return polys[:, fan].reshape(-1, 3) if fan else np.zeros((0, 3), dtype=np.int64)


def _strip_triangles(column: np.ndarray) -> np.ndarray:
    """Triangle strips (one per list, -1 restarts a strip): triangle j of a strip is (s[j], s[j+1],
    s[j+2]) with every odd one reversed so that all keep the strip's orientation; degenerate
    triangles (a repeated index, the usual way of joining strips) are dropped."""
    flat, lengths = _flat_lists(column)
    pos = np.arange(flat.size)
    is_start = np.zeros(flat.size, dtype=bool)
    is_start[(np.cumsum(lengths) - lengths)[lengths > 0]] = True
    is_start[1:] |= flat[:-1] == -1
    strip_start = np.maximum.accumulate(np.where(is_start, pos, 0))
    j = pos[:-2]
    a, b, c = flat[j], flat[j + 1], flat[j + 2]
    ok = (a >= 0) & (b >= 0) & (c >= 0) & (strip_start[j + 2] == strip_start[j])
    ok &= (a != b) & (b != c) & (a != c)
    odd = (j - strip_start[j]) % 2 == 1
    tris = np.stack([np.where(odd, b, a), np.where(odd, a, b), c], axis=1)
    return tris[ok]


def read_ply(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(vertices [V, 3] float64, faces [F, 3] int64) of a .ply or .ply.gz (ASCII or binary).

    Faces come from a ``face`` element (``vertex_indices`` or ``vertex_index``; polygons are
    fan-triangulated) and/or a ``tristrips`` element; other elements and extra properties (colour,
    confidence, range grids) are ignored. A file that is not such a mesh raises :class:`PLYError`.
    """
    path = Path(path)
    try:
        with _seekable(path) as f:
            ply = _read_plydata(f)
    except (PlyParseError, ValueError, EOFError, gzip.BadGzipFile) as exc:
        raise PLYError(f"{path}: not a readable PLY file ({exc}); expected an ASCII or binary PLY "
                       "mesh") from None
    elements = {el.name: el for el in ply.elements}
    names = {name: el.data.dtype.names or () for name, el in elements.items()}
    if not {"x", "y", "z"} <= set(names.get("vertex", ())):
        raise PLYError(f"{path}: no 'vertex' element with x, y and z properties; elements: "
                       f"{ {n: list(p) for n, p in names.items()} }")
    vertex = elements["vertex"].data
    vertices = np.stack([np.asarray(vertex[k], dtype=np.float64) for k in "xyz"], axis=1)
    parts = []
    for name, triangulate in (("face", _fan_triangles), ("tristrips", _strip_triangles)):
        key = next((k for k in FACE_KEYS if k in names.get(name, ())), None)
        if key is not None:
            parts.append(triangulate(elements[name].data[key]))
    if not parts:
        raise PLYError(f"{path}: no 'face' or 'tristrips' element with a {' or '.join(FACE_KEYS)} list "
                       "(a point cloud?); a triangle mesh is needed")
    faces = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise PLYError(f"{path}: face indices span {faces.min()}..{faces.max()}, outside the "
                       f"{len(vertices)} vertices 0..{len(vertices) - 1}")
    return vertices, faces


def _mesh_plydata(vertices: np.ndarray, faces: np.ndarray, text: bool) -> PlyData:
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    vert = np.empty(len(v), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    vert["x"], vert["y"], vert["z"] = v.T
    face = np.empty(len(faces), dtype=[("vertex_indices", "<i4", (3,))])
    face["vertex_indices"] = np.asarray(faces).reshape(-1, 3)
    return PlyData([PlyElement.describe(vert, "vertex"), PlyElement.describe(face, "face")],
                   text=text, byte_order="<", comments=["iga-repro"])


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray, text: bool = False) -> None:
    """Float32 vertices and int32 triangles (``vertex_indices``), binary little-endian or ASCII
    (``text=True``), written atomically."""
    ply = _mesh_plydata(vertices, faces, text)
    with atomic_file(path, "wb") as f:
        if text:
            ply.write(f)
            return
        # plyfile writes a list element record by record (60 s for 10M triangles); a binary record
        # of a fixed-length list is (count, items), so the face block is one numpy buffer
        vert, face = ply["vertex"].data, ply["face"].data
        rec = np.empty(len(face), dtype=[("n", "u1"), ("vertex_indices", "<i4", (3,))])
        rec["n"], rec["vertex_indices"] = 3, face["vertex_indices"]
        f.write(ply.header.encode("ascii") + b"\n")
        f.write(vert.tobytes())
        f.write(rec.tobytes())


# --- normalisation and voxelisation ------------------------------------------------------------
def normalize_acorn(vertices: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """Centre the bounding box at 0 and scale the longest half-extent to 1: (v', centre, scale)."""
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    centre = (lo + hi) / 2.0
    scale = float(((hi - lo) / 2.0).max())
    if not scale > 0:
        raise ValueError("the mesh has an empty bounding box")
    return (v - centre) / scale, centre, scale


def _axis_crossings(q: np.ndarray, faces: np.ndarray, R: int, a: int, signed: bool,
                    chunk: int) -> np.ndarray:
    """Crossing deltas of the rays along axis ``a`` through every voxel column.

    Returns D [R, R, R+1] int16 in layout (b, c, a) with b, c = a+1, a+2 (cyclic): D[.., k] is the
    (signed) number of crossings between voxel k-1 and voxel k of the column (k = 0: before voxel 0).
    """
    b, c = (a + 1) % 3, (a + 2) % 3
    D = np.zeros(R * R * (R + 1), dtype=np.int16)
    for s in range(0, len(faces), chunk):
        f = faces[s: s + chunk]
        Pb, Pc, Pa = q[f, b], q[f, c], q[f, a]  # [n, 3] each
        # projected doubled area (= n_a, the normal's a-component, by the cyclic (b, c) order)
        area = (Pb[:, 1] - Pb[:, 0]) * (Pc[:, 2] - Pc[:, 0]) - (Pc[:, 1] - Pc[:, 0]) * (Pb[:, 2] - Pb[:, 0])
        bmin = np.maximum(np.ceil(Pb.min(1)), 0).astype(np.int64)
        bmax = np.minimum(np.floor(Pb.max(1)), R - 1).astype(np.int64)
        cmin = np.maximum(np.ceil(Pc.min(1)), 0).astype(np.int64)
        cmax = np.minimum(np.floor(Pc.max(1)), R - 1).astype(np.int64)
        nb, nc = bmax - bmin + 1, cmax - cmin + 1
        keep = np.flatnonzero((nb > 0) & (nc > 0) & (area != 0))
        if keep.size == 0:
            continue
        Pb, Pc, Pa, area = Pb[keep], Pc[keep], Pa[keep], area[keep]
        bmin, cmin, nb, nc = bmin[keep], cmin[keep], nb[keep], nc[keep]
        sgn = np.sign(area)
        # per edge k (opposite vertex k, running k+1 -> k+2): canonical endpoints p -> q
        edge = []
        for k in range(3):
            u, w = (k + 1) % 3, (k + 2) % 3
            swap = (Pb[:, u] > Pb[:, w]) | ((Pb[:, u] == Pb[:, w]) & (Pc[:, u] > Pc[:, w]))
            pb = np.where(swap, Pb[:, w], Pb[:, u])
            pc = np.where(swap, Pc[:, w], Pc[:, u])
            db = np.where(swap, Pb[:, u], Pb[:, w]) - pb
            dc = np.where(swap, Pc[:, u], Pc[:, w]) - pc
            flip = np.where(swap, -sgn, sgn)  # canonical -> triangle order -> counter-clockwise
            tdb, tdc = db * flip, dc * flip  # edge direction in the counter-clockwise traversal
            topleft = (tdc < 0) | ((tdc == 0) & (tdb > 0))
            edge.append((pb, pc, db, dc, flip, topleft))
        counts = nb * nc
        tri = np.repeat(np.arange(len(counts)), counts)
        starts = np.cumsum(counts) - counts
        off = np.arange(tri.size, dtype=np.int64) - starts[tri]
        yb = (bmin[tri] + off % nb[tri]).astype(np.float64)
        yc = (cmin[tri] + off // nb[tri]).astype(np.float64)
        inside = np.ones(tri.size, dtype=bool)
        es = []
        for pb, pc, db, dc, flip, topleft in edge:
            e = (db[tri] * (yc - pc[tri]) - dc[tri] * (yb - pb[tri])) * flip[tri]
            inside &= (e > 0) | ((e == 0) & topleft[tri])
            es.append(e)
        sel = np.flatnonzero(inside)
        if sel.size == 0:
            continue
        t_tri = tri[sel]
        e0, e1, e2 = es[0][sel], es[1][sel], es[2][sel]
        t = (e0 * Pa[t_tri, 0] + e1 * Pa[t_tri, 1] + e2 * Pa[t_tri, 2]) / (e0 + e1 + e2)
        k = np.clip(np.floor(t).astype(np.int64) + 1, 0, R)
        col = yb[sel].astype(np.int64) * R + yc[sel].astype(np.int64)
        flat = col * (R + 1) + k
        # signed: +1 entering (the ray along +a meets a face whose normal points against it)
        vals = (-sgn[t_tri]).astype(np.int16) if signed else np.ones(sel.size, dtype=np.int16)
        np.add.at(D, flat, vals)
    return D.reshape(R, R, R + 1)


def voxelize(vertices: np.ndarray, faces: np.ndarray, resolution: int, method: str = "winding",
             normalize: bool = True, chunk: int = 1 << 20,
             log: Optional[Callable[[str], None]] = None) -> np.ndarray:
    """Occupancy bool [R, R, R] (axes x, y, z) of the mesh sampled at linspace(-1, 1, R)³.

    ``normalize=True`` applies ACORN's convention first (:func:`normalize_acorn`); with False the
    vertices are taken as already in [-1, 1] coordinates.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed; choose one of {list(METHODS)}")
    R = int(resolution)
    if R < 2:
        raise ValueError(f"resolution={R} must be >= 2")
    faces = np.asarray(faces, dtype=np.int64)
    v = normalize_acorn(vertices)[0] if normalize else np.asarray(vertices, dtype=np.float64)
    q = (v + 1.0) * ((R - 1) / 2.0)  # index space: voxel centres at integers 0..R-1
    signed = method == "winding"
    acc = np.zeros((R, R, R), dtype=np.int16 if signed else np.int8)
    for a in range(3):
        D = _axis_crossings(q, faces, R, a, signed, chunk)
        total = D.sum(axis=-1, dtype=np.int32)[..., None]
        before = np.cumsum(D[..., :R], axis=-1, dtype=np.int16)  # crossings between -inf and voxel
        del D
        layout = [(a + 1) % 3, (a + 2) % 3, a]
        perm = [layout.index(0), layout.index(1), layout.index(2)]
        if signed:
            # ray to -inf counts W-, ray to +inf counts W+ = W- - total: their sum is 2W- - total
            contrib = (2 * before - total).astype(np.int16)
        else:
            contrib = ((before & 1) + ((total - before) & 1)).astype(np.int8)
        del before
        acc += contrib.transpose(perm)
        del contrib
        if log:
            log(f"axis {'xyz'[a]} done")
    if signed:
        return np.abs(acc) > 3   # |mean over 6 rays| > 1/2
    return acc >= 4              # at least 4 of 6 rays see an odd number of crossings


# --- volume files -----------------------------------------------------------------------------
def save_volume(path: Path, occupancy: np.ndarray, **meta) -> None:
    """Bit-packed, compressed .npz: occupancy (bool) + metadata (layout, source, …)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    occ = np.asarray(occupancy, dtype=bool)
    meta = {k: np.asarray(v) for k, v in meta.items()}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, packed=np.packbits(occ.reshape(-1)), shape=np.asarray(occ.shape),
                        layout=np.asarray(meta.pop("layout", VOLUME_LAYOUT)), **meta)
    tmp.replace(path)


def load_volume(path: Path) -> Tuple[np.ndarray, dict]:
    """(occupancy bool array, metadata dict) from :func:`save_volume`'s file."""
    with np.load(path, allow_pickle=False) as z:
        shape = tuple(int(s) for s in z["shape"])
        occ = np.unpackbits(z["packed"], count=int(np.prod(shape))).astype(bool).reshape(shape)
        meta = {k: z[k].tolist() for k in z.files if k not in ("packed", "shape")}
    return occ, meta


def load_mat_volume(path: Path, key: str = "hypercube") -> np.ndarray:
    """The WIRE / FR-INR precomputed volume (.mat, uint8 {0, 255}) as bool, axes as stored.

    Those files index the grid as their generator's ``meshgrid`` did; the official training code
    reads them as (H, W, T) and builds coordinates with ``np.meshgrid(x_W, y_H, z_T)`` (``'xy'``
    indexing). Occupancy is ``value > 0.99 · max`` as in the official loader.
    """
    from scipy import io as sio
    data = sio.loadmat(str(path))
    if key not in data:
        raise KeyError(f"{path}: no key {key!r}; keys: {sorted(k for k in data if not k.startswith('__'))}")
    vol = np.asarray(data[key])
    return vol.astype(np.float32) / max(float(vol.max()), 1e-12) > 0.99


def find_mesh(folder: Path, member: str) -> Path:
    """``folder/member`` if it exists, else the unique file named like it below ``folder``."""
    folder = Path(folder)
    p = folder / member
    if p.is_file():
        return p
    hits = sorted(q for q in folder.rglob(Path(member).name) if q.is_file())
    if len(hits) == 1:
        return hits[0]
    plys = sorted(str(q.relative_to(folder)) for q in folder.rglob("*.ply*"))
    raise FileNotFoundError(f"{member} not found under {folder}; PLY files there: {plys[:20]}")


def main_log(msg: str) -> None:  # pragma: no cover - progress lines for the CLI
    print(msg, file=sys.stderr, flush=True)
