"""PNG figures (matplotlib is optional: these tests skip without it)."""

import pytest
import torch

pytest.importorskip("matplotlib")

from rotcodec.plots import spectrograms, training_curves, usage_bars  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_are_written_as_png(tmp_path):
    wav = torch.sin(torch.arange(16000) * 0.2)[None] * 0.3
    paths = [
        spectrograms({"original": wav, "decoded": wav * 0.5}, 16000, tmp_path / "a" / "spec.png", "clip"),
        usage_bars({"1.5 kbps": [50.0, 20.0], "6 kbps": [50.0, 20.0, 10.0]}, tmp_path / "usage.png"),
        training_curves({"mel": {"ste": [[(1, 1.0), (2, 0.8)], [(1, 1.1), (2, 0.7)]], "rot": [[(1, 0.9)]]}},
                        tmp_path / "curves.png", title="t"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
