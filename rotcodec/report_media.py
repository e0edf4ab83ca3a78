"""What a listening report embeds, as ``data:`` URIs: audio as 16-bit FLAC, spectrograms as
indexed-colour PNGs sharing one dB scale. numpy, zlib and soundfile only, so a report needs no
matplotlib and no browser-side code."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import soundfile as sf
import torch

from rotcodec.plots import log_spectrogram

__all__ = ["data_uri", "flac_bytes", "png_indexed", "palette", "spectrogram_pngs", "colorbar_png", "DB_RANGE"]

DB_RANGE = 80.0
"""Spectrograms show this many dB below the loudest bin of their clip (all versions together)."""

# matplotlib's "magma" at 0, 1/8, ..., 1 (sRGB 0-255), so pictures match `rotcodec eval --plot`.
_MAGMA = [(0, 0, 4), (29, 17, 71), (81, 18, 124), (131, 38, 129), (183, 55, 121), (231, 82, 99),
          (252, 137, 97), (254, 196, 136), (252, 253, 191)]


def data_uri(mime: str, data: bytes) -> str:
    """``data:<mime>;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def flac_bytes(wav: np.ndarray, sample_rate: int) -> bytes:
    """``wav [C, T]`` float as a 16-bit FLAC file in memory (samples clipped to [-1, 1])."""
    buf = io.BytesIO()
    samples = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0).T
    sf.write(buf, samples, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def palette(n: int = 256) -> np.ndarray:
    """``[n, 3]`` uint8: the magma colour map, dark (quiet) to bright (loud)."""
    anchors = np.asarray(_MAGMA, dtype=np.float64)
    x = np.linspace(0, len(anchors) - 1, n)
    return np.stack([np.interp(x, np.arange(len(anchors)), anchors[:, c]) for c in range(3)], 1).round().astype(np.uint8)


def png_indexed(pixels: np.ndarray, colors: np.ndarray) -> bytes:
    """A PNG of ``pixels [H, W]`` (uint8 indices into ``colors [N <= 256, 3]``), top row first."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape
    raw = np.concatenate([np.zeros((height, 1), np.uint8), pixels], axis=1).tobytes()  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", np.asarray(colors, np.uint8).tobytes()) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def spectrogram_pngs(rows: dict[str, np.ndarray], sample_rate: int, width: int = 800,
                     height: int = 128) -> tuple[dict[str, bytes], float]:
    """One PNG per waveform in ``rows`` (label -> ``[C, T]``, all the same length): log-power
    spectrograms, 0 Hz at the bottom to ``sample_rate / 2`` at the top, all the same size and on
    the same colour scale (:data:`DB_RANGE` dB below the loudest bin of all of them). Returns the
    PNGs and that loudest level in dB."""
    specs = {}
    for label, wav in rows.items():
        spec = log_spectrogram(torch.as_tensor(np.asarray(wav, dtype=np.float32)), sample_rate)  # [F, frames]
        size = (min(height, spec.shape[0]), max(1, min(width, spec.shape[1])))
        specs[label] = torch.nn.functional.interpolate(spec[None, None], size=size, mode="area")[0, 0]
    top = max(float(s.max()) for s in specs.values())
    colors = palette()
    pngs = {}
    for label, spec in specs.items():
        level = ((spec - (top - DB_RANGE)) / DB_RANGE).clamp(0, 1) * (len(colors) - 1)
        pngs[label] = png_indexed(level.round().to(torch.uint8).flip(0).numpy(), colors)
    return pngs, top


def colorbar_png(width: int = 256) -> bytes:
    """A horizontal strip of the colour scale, quiet (left) to loud (right)."""
    return png_indexed(np.tile(np.linspace(0, 255, width).round().astype(np.uint8), (8, 1)), palette())
