"""Mesh → occupancy: inside tests on closed and open meshes, the edge tie rule, PLY and volume I/O."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import numpy as np
import pytest

from iga.cli import main
from iga.configs import ConfigError
from iga.data.procedural_shape import make_mesh, mesh_volume, torus_mesh
from iga.data.voxelize import (
    _axis_crossings,
    find_mesh,
    load_mat_volume,
    load_volume,
    normalize_acorn,
    read_ply,
    save_volume,
    voxelize,
    write_ply,
)


def icosphere(subdivisions: int = 3):
    """Closed, outward-oriented unit icosphere."""
    t = (1 + 5**0.5) / 2
    v = [
        (-1, t, 0),
        (1, t, 0),
        (-1, -t, 0),
        (1, -t, 0),
        (0, -1, t),
        (0, 1, t),
        (0, -1, -t),
        (0, 1, -t),
        (t, 0, -1),
        (t, 0, 1),
        (-t, 0, -1),
        (-t, 0, 1),
    ]
    f = [
        (0, 11, 5),
        (0, 5, 1),
        (0, 1, 7),
        (0, 7, 10),
        (0, 10, 11),
        (1, 5, 9),
        (5, 11, 4),
        (11, 10, 2),
        (10, 7, 6),
        (7, 1, 8),
        (3, 9, 4),
        (3, 4, 2),
        (3, 2, 6),
        (3, 6, 8),
        (3, 8, 9),
        (4, 9, 5),
        (2, 4, 11),
        (6, 2, 10),
        (8, 6, 7),
        (9, 8, 1),
    ]
    verts = [np.array(p, float) / np.linalg.norm(p) for p in v]
    faces = list(f)
    for _ in range(subdivisions):
        cache, new = {}, []

        def mid(a, b, cache=cache):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return np.array(verts), np.array(faces, dtype=np.int64)


def box_mesh(half=(1.0, 0.5, 0.25), drop_top=False):
    hx, hy, hz = half
    v = np.array([[x, y, z] for x in (-hx, hx) for y in (-hy, hy) for z in (-hz, hz)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    if drop_top:
        quads = [q for q in quads if q != (1, 5, 7, 3)]  # the z = +hz face
    f = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return v, np.array(f, dtype=np.int64)


def grid_points(R):
    g = np.linspace(-1, 1, R)
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1)


@pytest.mark.parametrize("method", ["winding", "parity"])
def test_closed_sphere_volume_and_inside(method):
    v, f = icosphere(4)
    R = 48
    occ = voxelize(v, f, R, method=method)
    vn = normalize_acorn(v)[0]
    true_vol = mesh_volume(vn, f)
    h = 2 / (R - 1)
    assert occ.sum() * h**3 == pytest.approx(true_vol, rel=0.03)
    # away from the surface the answer is exact
    r = np.linalg.norm(grid_points(R), axis=-1)
    assert (occ[r < 0.95]).all() and not (occ[r > 1.0 + 1e-9]).any()


def test_box_volume_and_acorn_convention():
    v, f = box_mesh((2.0, 1.0, 0.5))
    v = v + np.array([10.0, -3.0, 7.0])  # off-centre: the convention centres the bounding box
    R = 33
    occ = voxelize(v, f, R)
    vn, centre, scale = normalize_acorn(v)
    assert np.allclose(centre, [10, -3, 7]) and scale == pytest.approx(2.0)
    assert np.allclose(vn.min(0), [-1, -0.5, -0.25]) and np.allclose(vn.max(0), [1, 0.5, 0.25])
    p = grid_points(R)
    strict_in = (np.abs(p) < np.array([1, 0.5, 0.25]) - 1e-9).all(-1)
    strict_out = (np.abs(p) > np.array([1, 0.5, 0.25]) + 1e-9).any(-1)
    assert occ[strict_in].all() and not occ[strict_out].any()


def octahedron():
    V = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    F = []
    for ix in (0, 1):
        for iy in (2, 3):
            for iz in (4, 5):
                a, b, c = V[[ix, iy, iz]]
                F.append([ix, iy, iz] if np.cross(b - a, c - a) @ (a + b + c) > 0 else [ix, iz, iy])
    return V, np.array(F, dtype=np.int64)


@pytest.mark.parametrize("R", [17, 33, 32])
def test_rays_through_shared_edges_and_vertices_count_once(R):
    """Odd R puts grid rays exactly through the octahedron's vertices and edges: every column of a
    closed mesh must see as many entries as exits, on every axis separately."""
    V, F = octahedron()
    q = (V + 1) * (R - 1) / 2
    p = grid_points(R)
    s = np.abs(p).sum(-1)
    truth, on_surface = s < 1, np.abs(s - 1) < 1e-9
    for a in range(3):
        layout = [(a + 1) % 3, (a + 2) % 3, a]
        perm = [layout.index(i) for i in range(3)]
        D = _axis_crossings(q, F, R, a, True, 1 << 20)
        assert (D.sum(-1) == 0).all(), f"axis {a}: a ray counted a shared edge/vertex twice or never"
        W = np.cumsum(D[..., :R], axis=-1).transpose(perm)
        assert ((W == 1) == truth)[~on_surface].all(), f"axis {a}: winding must be exactly 1 inside"
        assert (W[~on_surface & ~truth] == 0).all()
        C = np.cumsum(_axis_crossings(q, F, R, a, False, 1 << 20)[..., :R], axis=-1).transpose(perm)
        assert ((C % 2 == 1) == truth)[~on_surface].all(), f"axis {a}: parity wrong at a shared edge/vertex"


def sphere_with_hole(cap_z=0.8):
    v, f = icosphere(4)
    keep = v[f][:, :, 2].min(axis=1) < cap_z  # drop the faces of the polar cap: a hole of radius 0.6
    return v, f[keep]


@pytest.mark.parametrize("method", ["winding", "parity"])
def test_open_sphere_hole_is_filled(method):
    """A sphere missing its polar cap (z > 0.8, a hole of radius 0.6): below the cap the body is
    inside exactly as for the closed sphere; the cap itself (the hole) is legitimately ambiguous."""
    v, f = sphere_with_hole()
    R = 48
    closed = voxelize(*icosphere(4), R)
    occ = voxelize(v, f, R, method=method)
    p = grid_points(R)
    below_cap = p[..., 2] < 0.7
    assert (occ != closed)[below_cap].sum() <= 0.002 * closed.sum()
    outside = np.linalg.norm(p, axis=-1) > 1.0 + 1e-9
    assert not occ[outside].any()
    # a single ray direction (parity along z, counted from below) leaks through the hole: the whole
    # column above the hole turns "inside" — the test can tell a naive inside test from ours
    q = (normalize_acorn(v)[0] + 1) * (R - 1) / 2
    D = _axis_crossings(q, f, R, 2, False, 1 << 20)
    naive = np.cumsum(D[..., :R], -1) % 2 == 1
    assert naive[outside].sum() > 0.01 * closed.sum()


def test_open_box_both_methods():
    v, f = box_mesh((1.0, 0.8, 0.6), drop_top=True)
    R = 41
    closed = voxelize(*box_mesh((1.0, 0.8, 0.6)), R)
    for method in ("winding", "parity"):
        occ = voxelize(v, f, R, method=method)
        assert (occ != closed).sum() / closed.sum() < 0.12, method
        p = grid_points(R)
        deep = (np.abs(p) < np.array([0.9, 0.7, 0.3])).all(-1)
        assert occ[deep].all(), method


def test_inverted_orientation_is_still_inside():
    v, f = icosphere(3)
    a = voxelize(v, f, 24)
    b = voxelize(v, f[:, ::-1], 24)
    assert (a == b).all() and a.any()


def test_procedural_shape_is_closed_and_voxelizes():
    v, f = make_mesh("bumpy", 64)
    occ = voxelize(v, f, 24)
    assert 0.05 < occ.mean() < 0.6
    q = (normalize_acorn(v)[0] + 1) * 23 / 2
    assert (_axis_crossings(q, f, 24, 0, True, 1 << 20).sum(-1) == 0).all()  # watertight


def test_large_torus_volume():
    v, f = torus_mesh(300, 120)
    occ = voxelize(v, f, 64, chunk=5000)  # several chunks
    vn = normalize_acorn(v)[0]
    assert occ.sum() * (2 / 63) ** 3 == pytest.approx(mesh_volume(vn, f), rel=0.03)


# --- I/O ----------------------------------------------------------------------------------------
def test_ply_binary_roundtrip_and_gz(tmp_path):
    v, f = icosphere(1)
    write_ply(tmp_path / "s.ply", v, f)
    v2, f2 = read_ply(tmp_path / "s.ply")
    assert np.allclose(v2, v, atol=1e-6) and (f2 == f).all()
    (tmp_path / "s.ply.gz").write_bytes(gzip.compress((tmp_path / "s.ply").read_bytes()))
    v3, f3 = read_ply(tmp_path / "s.ply.gz")
    assert np.allclose(v3, v2) and (f3 == f).all()
    write_ply(tmp_path / "t.ply", v, f, text=True)
    assert (tmp_path / "t.ply").read_bytes().startswith(b"ply\nformat ascii 1.0\n")
    v4, f4 = read_ply(tmp_path / "t.ply")
    assert np.allclose(v4, v2) and (f4 == f).all()


def test_fast_binary_write_is_byte_identical_to_plyfile(tmp_path):
    from iga.data.voxelize import _mesh_plydata

    v, f = icosphere(1)
    write_ply(tmp_path / "fast.ply", v, f)
    _mesh_plydata(v, f, text=False).write(str(tmp_path / "ref.ply"))
    assert (tmp_path / "fast.ply").read_bytes() == (tmp_path / "ref.ply").read_bytes()


@pytest.mark.parametrize("text", [True, False], ids=["ascii", "binary"])
@pytest.mark.parametrize("quads", [False, True], ids=["triangles", "quads"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_ply_roundtrip_scan_layout(tmp_path, text, quads, gz):
    """A scan-like PLY written by plyfile: an extra vertex property (confidence), faces named
    `vertex_index`, triangles (memory-mapped) or quads (read record by record), plain or gzipped."""
    from plyfile import PlyData, PlyElement

    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(40, 3)).astype("<f4")
    vert = np.empty(40, dtype=[("x", "<f4"), ("y", "<f4"), ("confidence", "<f4"), ("z", "<f4")])
    vert["x"], vert["y"], vert["z"], vert["confidence"] = xyz[:, 0], xyz[:, 1], xyz[:, 2], rng.random(40)
    n = 4 if quads else 3
    polys = rng.integers(0, 40, size=(25, n))
    face = np.empty(25, dtype=[("vertex_index", "<i4", (n,))])
    face["vertex_index"] = polys
    out = tmp_path / ("m.ply.gz" if gz else "m.ply")
    with gzip.open(out, "wb") if gz else open(out, "wb") as fh:
        PlyData([PlyElement.describe(vert, "vertex"), PlyElement.describe(face, "face")], text=text).write(fh)
    v, f = read_ply(out)
    assert v.dtype == np.float64 and np.allclose(v, xyz)
    want = polys if not quads else np.stack([polys[:, [0, 1, 2]], polys[:, [0, 2, 3]]], axis=1).reshape(-1, 3)
    assert f.dtype == np.int64 and f.tolist() == want.tolist()


def test_ply_triangle_strips_keep_orientation(tmp_path):
    """A `tristrips` element (as in some Stanford scans): a 2x4 vertex grid as one strip, restarted
    with -1 and padded with a repeated index (degenerate triangles, dropped); odd triangles are
    reversed, so every triangle faces +z like the first one."""
    text = """ply
format ascii 1.0
element vertex 8
property float x
property float y
property float z
element tristrips 1
property list int int vertex_indices
end_header
0 0 0
0 1 0
1 0 0
1 1 0
2 0 0
2 1 0
3 0 0
3 1 0
11 0 2 1 3 -1 2 4 3 5 5 5
"""
    (tmp_path / "s.ply").write_text(text)
    v, f = read_ply(tmp_path / "s.ply")
    assert f.tolist() == [[0, 2, 1], [1, 2, 3], [2, 4, 3], [3, 4, 5]]
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert (normals[:, 2] > 0).all()


_XYZ = b"property float x\nproperty float y\nproperty float z\n"


@pytest.mark.parametrize(
    "body, match",
    [
        (b"hello\n", "not a readable PLY file"),
        (b"ply\nformat ascii 1.0\nelement vertex 2\n" + _XYZ + b"end_header\n0 0 0\n", "early end-of-file"),
        (b"ply\nformat ascii 1.0\nelement vertex 1\n" + _XYZ + b"end_header\n0 0 0\n", "a point cloud"),
        (
            b"ply\nformat ascii 1.0\nelement vertex 1\n"
            + _XYZ
            + b"element face 1\nproperty list uchar int vertex_indices\n"
            b"end_header\n0 0 0\n3 0 1 2\n",
            "outside the 1 vertices",
        ),
    ],
)
def test_bad_ply_is_a_one_line_config_error_naming_the_file(tmp_path, capsys, body, match):
    bad = tmp_path / "broken.ply"
    bad.write_bytes(body)
    with pytest.raises(ConfigError, match=match) as err:
        read_ply(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert main(["voxelize", "--mesh", str(bad), "--resolution", "8", "--out", str(tmp_path / "v.npz")]) == 2
    assert str(bad) in capsys.readouterr().err and not (tmp_path / "v.npz").exists()


def test_ply_ascii_extra_properties_and_quads(tmp_path):
    text = """ply
format ascii 1.0
comment like bun_zipper.ply: extra vertex properties
element vertex 5
property float x
property float y
property float z
property float confidence
property float intensity
element face 2
property list uchar int vertex_indices
end_header
0 0 0 1 0.5
1 0 0 1 0.5
1 1 0 1 0.5
0 1 0 1 0.5
0 0 1 1 0.5
4 0 1 2 3
3 0 1 4
"""
    (tmp_path / "a.ply").write_text(text)
    v, f = read_ply(tmp_path / "a.ply")
    assert v.shape == (5, 3) and v[2].tolist() == [1, 1, 0]
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 4]]


def test_ply_big_endian_with_colours_and_other_elements(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=">f4")
    vert = np.empty(3, dtype=[("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vert["x"], vert["y"], vert["z"] = v[:, 0], v[:, 1], v[:, 2]
    face = np.empty(1, dtype=[("n", "u1"), ("i", ">i4", (3,))])
    face["n"], face["i"] = 3, [0, 1, 2]
    header = (
        "ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
        "element face 1\nproperty list uchar int vertex_indices\nelement extra 1\nproperty int k\nend_header\n"
    )
    (tmp_path / "b.ply").write_bytes(header.encode() + vert.tobytes() + face.tobytes() + np.array([7], ">i4").tobytes())
    v2, f2 = read_ply(tmp_path / "b.ply")
    assert np.allclose(v2, v) and f2.tolist() == [[0, 1, 2]]


def test_volume_roundtrip(tmp_path):
    occ = np.random.default_rng(0).random((5, 6, 7)) > 0.5
    save_volume(tmp_path / "v.npz", occ, source="x", method="winding")
    back, meta = load_volume(tmp_path / "v.npz")
    assert (back == occ).all() and meta["source"] == "x" and meta["layout"] == "xyz"


def test_mat_volume_and_cli_folder_with_odd_member_name(tmp_path):
    from scipy import io as sio

    cube = np.zeros((8, 8, 8), np.uint8)
    cube[2:5, 3:6, 1:7] = 255
    folder = tmp_path / "dragon"
    folder.mkdir()
    sio.savemat(folder / " dragon.mat", {"hypercube": cube})  # the real zip's member starts with a space
    assert (load_mat_volume(folder / " dragon.mat") == (cube > 0)).all()
    assert main(["mat-to-volume", "--mat", str(folder), "--out", str(tmp_path / "d.npz")]) == 0
    assert (load_volume(tmp_path / "d.npz")[0] == (cube > 0)).all()


def test_cli_voxelize_member_search(tmp_path, capsys):
    v, f = icosphere(2)
    write_ply(tmp_path / "scan" / "bunny" / "reconstruction" / "bun_zipper.ply", v, f)
    # the configured member path is wrong but the file name is unique: it is found
    assert find_mesh(tmp_path / "scan", "elsewhere/bun_zipper.ply").name == "bun_zipper.ply"
    rc = main(
        [
            "voxelize",
            "--mesh",
            str(tmp_path / "scan"),
            "--member",
            "bunny/reconstruction/bun_zipper.ply",
            "--resolution",
            "16",
            "--out",
            str(tmp_path / "vol.npz"),
        ]
    )
    assert rc == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["faces"] == len(f) and 0.2 < rep["occupied_fraction"] < 0.6
    with pytest.raises(FileNotFoundError, match="not found"):
        find_mesh(tmp_path / "scan", "missing.ply")


def test_malicious_scan_archive_is_refused(tmp_path, capsys):
    """A scan tarball whose member climbs out of the target: `iga extract` fails, writes nothing."""
    arc = tmp_path / "bunny.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        for name in ("bunny/reconstruction/bun_zipper.ply", "../../evil.ply"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"ply"))
    out = tmp_path / "stanford" / "bunny" / "extracted"
    assert main(["extract", "--archive", str(arc), "--out", str(out)]) == 1
    assert "../../evil.ply" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "evil.ply").exists()
