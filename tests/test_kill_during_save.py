"""SIGKILL in the middle of checkpoint writes never leaves a corrupt checkpoint behind."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

WRITER = r"""
import sys, torch
from rotcodec.files import atomic_torch_save
path = sys.argv[1]
i = 0
while True:
    i += 1
    atomic_torch_save({"step": i, "weights": torch.full((2_000_000,), float(i))}, path)  # 8 MB
    print(i, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("delay", [0.05, 0.3, 0.9])
def test_sigkill_while_saving_keeps_a_valid_checkpoint(tmp_path, delay):
    path = tmp_path / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    first = proc.stdout.readline()  # one complete save, then kill at some point of a later one
    assert first.strip() == "1"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    blob = torch.load(path, weights_only=True)
    assert blob["step"] >= 1 and torch.equal(blob["weights"], torch.full((2_000_000,), float(blob["step"])))
