"""Read 16-bit colour PNGs exactly (Pillow keeps only their high byte).

Pillow opens 16-bit gray PNGs as ``I;16`` (exact) but 16-bit gray+alpha, RGB and RGBA as 8-bit
modes, dropping the low byte. This reads those: IHDR, IDAT → zlib → the five scanline filters
(PNG spec section 9) → ``uint16`` H×W×C. Only what :func:`png_header` reports as 16-bit colour and
not interlaced goes here; everything else is Pillow's.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type → samples per pixel


class PNGHeader(NamedTuple):
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlace: int


def png_header(path: Path) -> PNGHeader | None:
    """The IHDR of a PNG file, or None if ``path`` is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or not head.startswith(SIGNATURE) or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return PNGHeader(w, h, depth, ctype, interlace)


def _chunks(data: bytes):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError(f"chunk {kind!r} is truncated")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise ValueError("no IEND chunk (file truncated)")


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    a, b, c = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)


def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-scanline filters; ``raw`` holds height × (1 + stride) bytes."""
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # Sub: running sum (mod 256) per byte lane of a pixel
            cur = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:  # Up
            cur = line + prev
        elif kind in (3, 4):  # Average, Paeth: each pixel needs the one just decoded
            cur = line.copy()
            left = np.zeros(bpp, np.uint8)
            up_left = np.zeros(bpp, np.uint8)
            for x in range(0, stride, bpp):
                up = prev[x:x + bpp]
                if kind == 3:
                    pred = ((left.astype(np.uint16) + up) // 2).astype(np.uint8)
                else:
                    pred = _paeth(left, up, up_left)
                cur[x:x + bpp] += pred
                left, up_left = cur[x:x + bpp], up
        else:
            raise ValueError(f"scanline {y} has filter type {kind} (allowed 0-4)")
        out[y] = cur
        prev = cur
    return out


def read_png16(path: Path) -> np.ndarray:
    """H×W×C ``uint16`` of a non-interlaced 16-bit PNG (C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)."""
    data = Path(path).read_bytes()
    hdr = png_header(path)
    if hdr is None or hdr.bit_depth != 16 or hdr.interlace != 0 or hdr.colour_type not in CHANNELS:
        raise ValueError(f"not a non-interlaced 16-bit PNG ({hdr})")
    c = CHANNELS[hdr.colour_type]
    idat = b"".join(body for kind, body in _chunks(data) if kind == b"IDAT")
    stride, bpp = hdr.width * c * 2, c * 2
    raw = np.frombuffer(zlib.decompress(idat), np.uint8)
    if raw.size != hdr.height * (stride + 1):
        raise ValueError(f"image data holds {raw.size} bytes, expected {hdr.height * (stride + 1)}")
    pixels = _unfilter(raw, hdr.height, stride, bpp)
    return pixels.view(">u2").astype(np.uint16).reshape(hdr.height, hdr.width, c)
