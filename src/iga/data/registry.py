"""Where every external file of the reproduction comes from, and how to check it.

Why a registry: URLs and hashes live in one reviewed place instead of being scattered
through workflow rules, and :func:`resolve` turns a typo into an error listing what exists.

How each source is verified (a file that fails is never taken as a finished download):

- SHA-256 + size: Kodak kodim01-08, the occupancy ``.mat.zip`` volumes; SHA-256: nerf_synthetic.zip;
- SHA-256 prefix: the LPIPS AlexNet weights (torchvision's file-name convention);
- size + format only (no hash is published): the Stanford scans.  The Thai statue's exact
  size is known (106,051,627 bytes); bunny, dragon, armadillo and lucy get a conservative
  minimum size (well below the real file, far above any error page) and a full format check
  (the gzip stream decompresses intact, with a tar or PLY header inside).

Mirror layout: a mirror holds ``<dataset>/<filename>`` (e.g. ``kodak/kodim01.png``) or just
``<filename>``; :meth:`Source.fetch` tries them in that order, before the public URLs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .download import DownloadError, fetch


@dataclass(frozen=True)
class Source:
    """One downloadable file.  ``sha256=None`` means no trustworthy hash is published."""
    dataset: str
    item: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None = None
    sha256_prefix: str | None = None
    note: str = ""
    min_size: int | None = None   # lower bound when the exact size is not known
    fmt: str | None = None        # iga.data.formats check, where no hash is published
    mirror_dir: str = field(default="")

    @property
    def checks(self) -> str:
        """How a download of this source is verified, in words."""
        parts = ([f"sha256 {self.sha256}"] if self.sha256 else []) + (
            [f"sha256 prefix {self.sha256_prefix}"] if self.sha256_prefix else []) + (
            [f"size {self.size}"] if self.size is not None else []) + (
            [f"size >= {self.min_size}"] if self.min_size is not None else []) + (
            [f"format {self.fmt}"] if self.fmt else [])
        return ", ".join(parts) or "none"

    @property
    def mirror_paths(self) -> tuple[str, ...]:
        """Relative paths tried inside a mirror, in order."""
        sub = self.mirror_dir or self.dataset
        return (f"{sub}/{self.filename}", self.filename)

    def fetch(self, dest: Path, mirror: str | os.PathLike | None = None, **kwargs: Any) -> Path:
        """Download this source to ``dest`` (see :func:`iga.data.download.fetch`)."""
        dest = Path(dest)
        paths = list(self.mirror_paths)
        if dest.name not in paths:
            paths.append(dest.name)
        if not self.urls and mirror is None:
            raise DownloadError(f"{self.dataset}/{self.item}: no public URL; {self.note} "
                                f"Pass a mirror holding {self.mirror_paths[0]} or "
                                f"{self.filename}.")
        try:
            return fetch(list(self.urls), dest, self.sha256, size=self.size,
                         sha256_prefix=self.sha256_prefix, min_size=self.min_size,
                         fmt=self.fmt, mirror=mirror,
                         mirror_paths=paths, **kwargs)
        except DownloadError as exc:
            if self.urls:
                raise
            raise DownloadError(f"{exc}\n{self.dataset}/{self.item} has no public URL: "
                                f"{self.note}", exc.attempts) from exc


def _kodak() -> dict[str, Source]:
    # SHA-256 and sizes checked against real copies of the Kodak Lossless True Color suite.
    known = {
        "kodim01": ("a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd", 736501),
        "kodim02": ("4f4b74a79237e311d72cad958237b5f7088d8bce1c82305ebefe1a70e3022dfd", 617995),
        "kodim03": ("e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db", 502888),
        "kodim04": ("e3b946107c5d3441c022f678d0c3caf1e224d81b1604ba840a4f88e562de61aa", 637432),
        "kodim05": ("10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53", 785610),
        "kodim06": ("363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18", 618959),
        "kodim07": ("b77d3f006f42414bb242222e0482e750c0fb9e5ee8d4bed2f6f11c5605fe54a4", 566322),
        "kodim08": ("ba23983c76b4832ee0e8af0592664756841a16779acd69f792e268fb6d13d6e7", 788470),
    }
    return {name: Source("kodak", name, f"{name}.png",
                         (f"http://r0k.us/graphics/kodak/kodak/{name}.png",), sha, size)
            for name, (sha, size) in known.items()}


_STANFORD_NOTE = ("The Stanford 3D Scanning Repository publishes no checksums, so none is "
                  "recorded (sha256=None); the exact size (thai) or a minimum size and a "
                  "format check (gzip stream intact, tar/PLY header) stand in.")


def _stanford() -> dict[str, Source]:
    base = "http://graphics.stanford.edu"
    # item, filename, url, exact size (None: not recorded), minimum size, format.
    # Minimums are conservative floors, not measured sizes (no copy was at hand; only lucy's
    # ~322 MB is documented): meshes of 35k-14M vertices cannot compress below them.  They
    # reject error pages and stubs; the format check rejects anything else that is not a scan.
    rows = [
        ("bunny", "bunny.tar.gz", f"{base}/pub/3Dscanrep/bunny.tar.gz", None, 500_000,
         "tar.gz"),
        ("dragon", "dragon_recon.tar.gz", f"{base}/pub/3Dscanrep/dragon/dragon_recon.tar.gz",
         None, 2_000_000, "tar.gz"),
        ("armadillo", "Armadillo.ply.gz", f"{base}/pub/3Dscanrep/armadillo/Armadillo.ply.gz",
         None, 1_000_000, "ply.gz"),
        ("lucy", "lucy.tar.gz", f"{base}/data/3Dscanrep/lucy.tar.gz", None, 200_000_000,
         "tar.gz"),
        ("thai", "xyzrgb_statuette.ply.gz",
         f"{base}/data/3Dscanrep/xyzrgb/xyzrgb_statuette.ply.gz", 106051627, None, "ply.gz"),
    ]
    return {item: Source("stanford", item, fn, (url,), None, size, note=_STANFORD_NOTE,
                         min_size=min_size, fmt=fmt)
            for item, fn, url, size, min_size, fmt in rows}


_OCCUPANCY_NOTE = ("the precomputed occupancy volumes (WIRE / FR-INR .mat, key 'hypercube') "
                   "have no stable public download; they resolve only through a mirror.")


def _occupancy() -> dict[str, Source]:
    # Hashes of the published .mat.zip volumes (sha256sum of copies obtained from WIRE / FR-INR).
    return {
        "thai_statue": Source(
            "occupancy", "thai_statue", "thai_statue.mat.zip", (),
            "2b4f23005e73bd017e370d85ee0faa427c9d0c50cc5f577a7dff45d8e35957f1", 397631,
            note=_OCCUPANCY_NOTE),
        "dragon": Source(
            "occupancy", "dragon", "dragon.mat.zip", (),
            "946ca83a7e4aad3cfcdaed7004b0603a3267b81f4bdb3e9bd583ea2991309736", 491582,
            note=_OCCUPANCY_NOTE),
    }


def _nerf() -> dict[str, Source]:
    return {"nerf_synthetic": Source(
        "nerf_synthetic", "nerf_synthetic", "nerf_synthetic.zip",
        ("https://github.com/yxlao/nerfmirror/releases/download/20220618/nerf_synthetic.zip",
         # the original Google Drive copy; may 404 or answer a confirmation page (rejected)
         "https://drive.google.com/uc?export=download&id=18JxhpWD-4ZmuFKLzKlAw-w5PpzZxXOcG"),
        "f01fd1b4ab045b0d453917346f26f898657bb5bec4834b95fdad1f361826e45e")}


def _lpips() -> dict[str, Source]:
    # torchvision convention: the file name carries the first 8 hex digits of its SHA-256,
    # and torch.hub looks the weights up by this exact name.
    return {"alexnet": Source(
        "lpips", "alexnet", "alexnet-owt-7be5be79.pth",
        ("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",), None,
        sha256_prefix="7be5be79",
        note="AlexNet backbone of LPIPS, verified by torchvision's SHA-256 prefix.")}


REGISTRY: dict[str, dict[str, Source]] = {
    "kodak": _kodak(),
    "nerf_synthetic": _nerf(),
    "stanford": _stanford(),
    "occupancy": _occupancy(),
    "lpips": _lpips(),
}


def resolve(dataset: str, item: str) -> Source:
    """The :class:`Source` for ``dataset``/``item``; ValueError lists what is allowed."""
    if dataset not in REGISTRY:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(sorted(REGISTRY))}")
    items = REGISTRY[dataset]
    if item not in items:
        raise ValueError(f"unknown item {item!r} for dataset {dataset!r}; allowed: "
                         f"{', '.join(sorted(items))}")
    return items[item]
