"""Shared fixtures."""

import pytest
import torch

from rotcodec import Codec, CodecConfig


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models and small FFTs gain nothing from threads, and OpenMP threads on busy cores run
    10x slower. Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, one_thread):
    """A saved tiny model (codebooks initialised by one training forward), as a path string."""
    torch.manual_seed(0)
    model = Codec(CodecConfig.preset("tiny"))
    model.train()
    model(torch.randn(4, 1, 8000) * 0.1)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    model.eval().save(path)
    return str(path)
