"""PNG figures for evaluation and the ablation. matplotlib is an optional extra (``rotcodec[plot]``),
imported only when a figure is drawn, so inference and training never need it."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

__all__ = ["pyplot", "save", "log_spectrogram", "spectrograms", "usage_bars", "training_curves"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend; RuntimeError naming the extra if missing."""
    try:
        import matplotlib
    except ImportError as err:
        raise RuntimeError("plots need matplotlib: pip install 'rotcodec[plot]'") from err
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def log_spectrogram(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Power spectrogram in dB ``[F, frames]`` of ``wav [C, T]`` (channels averaged): a window of
    about 32 ms (a power of two, at least 256 samples), hop a quarter of it. Needs no matplotlib."""
    import torchaudio

    n_fft = 1 << max(8, (int(sample_rate * 0.032) - 1).bit_length())
    mono = wav.float().mean(0)
    mono = torch.nn.functional.pad(mono, (0, max(0, n_fft // 2 + 1 - mono.shape[-1])))  # reflect padding needs this
    spec = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=n_fft // 4, power=2.0)(mono)
    return 10 * torch.log10(spec.clamp_min(1e-10))


def spectrograms(rows: Mapping[str, torch.Tensor], sample_rate: int, path: str | Path, title: str) -> Path:
    """Log-power spectrograms of ``[C, T]`` waveforms (e.g. the original, then each decoding), one
    above the other on the same dB scale."""
    plt = pyplot()
    specs = {label: log_spectrogram(torch.as_tensor(wav), sample_rate) for label, wav in rows.items()}
    top = max(float(s.max()) for s in specs.values())
    seconds = next(iter(rows.values())).shape[-1] / sample_rate
    fig, axes = plt.subplots(len(specs), 1, figsize=(9, 1 + 2.2 * len(specs)), sharex=True,
                             constrained_layout=True, squeeze=False)
    for ax, (label, spec) in zip(axes[:, 0], specs.items()):
        im = ax.imshow(spec.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                       extent=(0, seconds, 0, sample_rate / 2000))
        ax.set_ylabel("kHz")
        ax.set_title(label, fontsize=9)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(title, fontsize=10)
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="dB")
    return save(fig, path)


def usage_bars(usage: Mapping[str, Sequence[float]], path: str | Path, title: str = "codebook usage per stage") -> Path:
    """Grouped bars: for each label (a bitrate or an ablation arm), the % of codes used per stage."""
    plt = pyplot()
    labels = list(usage)
    n_stages = max(len(v) for v in usage.values())
    width = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * n_stages * len(labels) + 2), 4), constrained_layout=True)
    for j, label in enumerate(labels):
        values = list(usage[label])
        ax.bar([i + j * width for i in range(len(values))], values, width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(n_stages)], [str(i + 1) for i in range(n_stages)])
    ax.set_xlabel("stage")
    ax.set_ylabel("% of codes used")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save(fig, path)


def training_curves(curves: Mapping[str, Mapping[str, Sequence[Sequence[tuple[int, float]]]]], path: str | Path,
                    title: str = "") -> Path:
    """One panel per metric (``curves[metric][label]`` is a list of runs, each a list of
    ``(step, value)``): the mean over runs as a line, min..max over runs shaded."""
    plt = pyplot()
    metrics = list(curves)
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), constrained_layout=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, runs in curves[metric].items():
            steps = sorted(set.intersection(*(set(s for s, _ in run) for run in runs))) if runs else []
            if not steps:
                continue
            values = torch.tensor([[dict(run)[s] for s in steps] for run in runs], dtype=torch.float64)
            line, = ax.plot(steps, values.mean(0).numpy(), label=f"{label} (n={len(runs)})")
            if len(runs) > 1:
                ax.fill_between(steps, values.min(0).values.numpy(), values.max(0).values.numpy(),
                                color=line.get_color(), alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders made), close it, return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
