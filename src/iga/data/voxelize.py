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
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

METHODS = ("winding", "parity")
VOLUME_LAYOUT = "xyz"


# --- PLY ------------------------------------------------------------------------------------
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


class PLYError(ValueError):
    """A PLY file this reader cannot understand; the message says what and where."""


@dataclass
class _Prop:
    name: str
    dtype: str                     # item type
    count_dtype: Optional[str]     # None for scalar properties, the list-count type for lists


@dataclass
class _Element:
    name: str
    count: int
    props: list


def _parse_header(f) -> Tuple[str, list]:
    magic = f.readline().strip()
    if magic != b"ply":
        raise PLYError(f"not a PLY file (first line {magic[:20]!r})")
    fmt, elements = None, []
    while True:
        line = f.readline()
        if not line:
            raise PLYError("PLY header has no end_header")
        parts = line.decode("ascii", "replace").split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "end_header":
            break
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append(_Element(parts[1], int(parts[2]), []))
        elif parts[0] == "property":
            if not elements:
                raise PLYError(f"property before any element: {line!r}")
            if parts[1] == "list":
                if parts[2] not in _PLY_TYPES or parts[3] not in _PLY_TYPES:
                    raise PLYError(f"unknown PLY type in {line!r}")
                elements[-1].props.append(_Prop(parts[4], _PLY_TYPES[parts[3]], _PLY_TYPES[parts[2]]))
            else:
                if parts[1] not in _PLY_TYPES:
                    raise PLYError(f"unknown PLY type in {line!r}")
                elements[-1].props.append(_Prop(parts[2], _PLY_TYPES[parts[1]], None))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise PLYError(f"unsupported PLY format {fmt!r}")
    return fmt, elements


def _triangulate(polys: list) -> np.ndarray:
    tris = []
    for p in polys:
        for i in range(1, len(p) - 1):
            tris.append((p[0], p[i], p[i + 1]))
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _read_binary_element(buf: memoryview, pos: int, el: _Element, endian: str):
    """Returns (columns dict, new position). Lists of one fixed length take a vectorised path."""
    if el.count == 0:
        return {}, pos
    fields = []
    if all(p.count_dtype is None for p in el.props):
        dt = np.dtype([(p.name, endian + p.dtype) for p in el.props])
        arr = np.frombuffer(buf, dtype=dt, count=el.count, offset=pos)
        return {p.name: arr[p.name] for p in el.props}, pos + dt.itemsize * el.count
    # fixed-length guess from the first record, verified on every record
    probe, lengths = pos, []
    for p in el.props:
        if p.count_dtype is None:
            probe += np.dtype(p.dtype).itemsize
            fields.append((p.name, endian + p.dtype))
        else:
            n = int(np.frombuffer(buf, dtype=endian + p.count_dtype, count=1, offset=probe)[0])
            lengths.append(n)
            probe += np.dtype(p.count_dtype).itemsize + n * np.dtype(p.dtype).itemsize
            fields.append((p.name + "__n", endian + p.count_dtype))
            fields.append((p.name, endian + p.dtype, (n,)))
    dt = np.dtype(fields)
    if pos + dt.itemsize * el.count <= len(buf):
        arr = np.frombuffer(buf, dtype=dt, count=el.count, offset=pos)
        ok = all((arr[p.name + "__n"] == n).all() for p, n in
                 zip([p for p in el.props if p.count_dtype is not None], lengths))
        if ok:
            return {p.name: arr[p.name] for p in el.props}, pos + dt.itemsize * el.count
    # general path: variable-length lists, one record at a time (small or unusual files only)
    cols = {p.name: [] for p in el.props}
    for _ in range(el.count):
        for p in el.props:
            if p.count_dtype is None:
                v = np.frombuffer(buf, dtype=endian + p.dtype, count=1, offset=pos)[0]
                pos += np.dtype(p.dtype).itemsize
                cols[p.name].append(v)
            else:
                n = int(np.frombuffer(buf, dtype=endian + p.count_dtype, count=1, offset=pos)[0])
                pos += np.dtype(p.count_dtype).itemsize
                cols[p.name].append(np.frombuffer(buf, dtype=endian + p.dtype, count=n, offset=pos).tolist())
                pos += n * np.dtype(p.dtype).itemsize
    lists = {p.name for p in el.props if p.count_dtype is not None}
    return {k: (v if k in lists else np.asarray(v)) for k, v in cols.items()}, pos


def _read_ascii_elements(text: bytes, elements: list) -> dict:
    tokens = text.split()
    pos, out = 0, {}
    for el in elements:
        if all(p.count_dtype is None for p in el.props):
            n = len(el.props)
            block = np.asarray(tokens[pos: pos + n * el.count], dtype=np.float64).reshape(el.count, n)
            pos += n * el.count
            out[el.name] = {p.name: block[:, i] for i, p in enumerate(el.props)}
            continue
        if len(el.props) == 1 and el.count:  # e.g. "3 a b c" faces: try the uniform layout
            n = int(tokens[pos])
            width = n + 1
            block = tokens[pos: pos + width * el.count]
            if len(block) == width * el.count:
                arr = np.asarray(block, dtype=np.int64).reshape(el.count, width)
                if (arr[:, 0] == n).all():
                    out[el.name] = {el.props[0].name: arr[:, 1:]}
                    pos += width * el.count
                    continue
        cols = {p.name: [] for p in el.props}
        for _ in range(el.count):
            for p in el.props:
                if p.count_dtype is None:
                    cols[p.name].append(float(tokens[pos]))
                    pos += 1
                else:
                    n = int(tokens[pos])
                    cols[p.name].append([int(t) for t in tokens[pos + 1: pos + 1 + n]])
                    pos += 1 + n
        out[el.name] = cols
    return out


def read_ply(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(vertices [V, 3] float64, faces [F, 3] int64) of a .ply or .ply.gz (ascii or binary);
    polygons are fan-triangulated, other elements (e.g. range grids) are skipped."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        fmt, elements = _parse_header(f)
        data = f.read()
    if fmt == "ascii":
        cols = _read_ascii_elements(data, elements)
    else:
        endian = "<" if fmt == "binary_little_endian" else ">"
        buf, pos, cols = memoryview(data), 0, {}
        for el in elements:
            cols[el.name], pos = _read_binary_element(buf, pos, el, endian)
    if "vertex" not in cols:
        raise PLYError(f"{path.name}: no 'vertex' element")
    v = cols["vertex"]
    if not all(k in v for k in "xyz"):
        raise PLYError(f"{path.name}: vertex element lacks x, y or z")
    vertices = np.stack([np.asarray(v[k], dtype=np.float64) for k in "xyz"], axis=1)
    face_el = cols.get("face", {})
    key = next((k for k in ("vertex_indices", "vertex_index") if k in face_el), None)
    if key is None:
        raise PLYError(f"{path.name}: no face element with vertex_indices (a point cloud?)")
    fl = face_el[key]
    if isinstance(fl, np.ndarray) and fl.ndim == 2:
        faces = fl.astype(np.int64) if fl.shape[1] == 3 else _triangulate(fl.tolist())
    else:
        faces = _triangulate(list(fl))
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise PLYError(f"{path.name}: face indices outside 0..{len(vertices) - 1}")
    return vertices, faces


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY (float32 vertices, int32 triangles), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    v = np.ascontiguousarray(vertices, dtype="<f4")
    rec = np.empty(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    rec["n"], rec["idx"] = 3, faces
    header = (f"ply\nformat binary_little_endian 1.0\ncomment iga-repro\nelement vertex {len(v)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(v.tobytes())
        f.write(rec.tobytes())
    tmp.replace(path)


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
