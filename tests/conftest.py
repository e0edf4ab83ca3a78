"""Shared fixtures, and one torch thread for every test.

Tiny models and small FFTs gain nothing from threads, and OpenMP threads on cores that other work
keeps busy run 10x slower (the suite took 27 minutes beside other work, under 2 alone). So torch
gets one thread for the whole session, and a test that needs more says so with
``@pytest.mark.threads(n)``. Whatever a test sets (``--threads``, ``$ROTCODEC_THREADS``) is undone
after it.
"""

import pytest
import torch

from rotcodec import Codec, CodecConfig


def pytest_configure(config):
    config.addinivalue_line("markers", "threads(n): run the test with n torch threads instead of one")


@pytest.fixture(scope="session", autouse=True)
def _one_thread_session():
    """One thread from the start of the session, before any module-scoped fixture builds a model."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _threads_per_test(request):
    """``n`` threads for a test marked ``threads(n)``, and back to one after every test."""
    marker = request.node.get_closest_marker("threads")
    if marker is not None:
        torch.set_num_threads(int(marker.args[0]))
    yield
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A saved tiny model (codebooks initialised by one training forward), as a path string."""
    torch.manual_seed(0)
    model = Codec(CodecConfig.preset("tiny"))
    model.train()
    model(torch.randn(4, 1, 8000) * 0.1)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    model.eval().save(path)
    return str(path)
