"""Language-model token layouts: flatten/unflatten with per-stage offsets, strict inverse, token files."""

import io

import numpy as np
import pytest
import torch

from rotcodec import FormatError, tokens


def test_frame_layout_interleaves_frames_with_stage_offsets():
    codes = np.array([[1, 2, 3], [4, 5, 6]])  # [n_q=2, F=3], K = 10
    assert tokens.flatten(codes, 10).tolist() == [1, 14, 2, 15, 3, 16]
    assert tokens.flatten(codes, 10, layout="stage").tolist() == [1, 2, 3, 14, 15, 16]
    assert tokens.vocab_size(2, 10) == 20


@pytest.mark.parametrize("layout", tokens.LAYOUTS)
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_unflatten_inverts_flatten_with_leading_dims(layout, lib):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(2, 3, 4, 17))  # [batch, C, n_q, F]
    if lib == "torch":
        codes = torch.from_numpy(codes)
    ids = tokens.flatten(codes, 256, layout)
    assert tuple(ids.shape) == (2, 3, 4 * 17)
    assert int(ids.max()) < tokens.vocab_size(4, 256)
    back = tokens.unflatten(ids, 4, 256, layout)
    assert type(back) is type(codes)
    assert (back == codes).all()


def test_unflatten_rejects_ids_of_the_wrong_stage():
    ids = tokens.flatten(np.zeros((3, 5), dtype=np.int64), 8)
    ids[7] = 3  # position 7 = frame 2, stage 1, which owns 8..15
    wrong_stage = r"position 7 \(frame 2, stage 1\) is not a stage-1 id: stage 1 owns ids 8..15"
    with pytest.raises(FormatError, match=wrong_stage):
        tokens.unflatten(ids, 3, 8)
    ids[7] = 24
    with pytest.raises(FormatError, match="outside the vocabulary 0..23"):
        tokens.unflatten(ids, 3, 8)
    ids[7] = -1
    with pytest.raises(FormatError, match="outside the vocabulary"):
        tokens.unflatten(torch.from_numpy(ids), 3, 8)


def test_unflatten_rejects_partial_frames_and_float_ids():
    with pytest.raises(FormatError, match="not a whole number of frames"):
        tokens.unflatten(np.arange(7), 3, 8)
    with pytest.raises(FormatError, match="must be integers"):
        tokens.unflatten(np.zeros(6), 3, 8)
    with pytest.raises(FormatError, match="outside the codebook"):
        tokens.flatten(np.full((2, 2), 8), 8)
    with pytest.raises(ValueError, match="layout"):
        tokens.flatten(np.zeros((2, 2), dtype=int), 8, layout="delay")


def test_load_codes_reads_npy_and_refuses_bad_files(tmp_path):
    good = tmp_path / "a.npy"
    np.save(good, np.arange(12, dtype=np.int16).reshape(1, 3, 4))
    codes = tokens.load_codes(good)
    assert codes.dtype == np.int64 and codes.shape == (1, 3, 4)
    pickled = tmp_path / "p.npy"
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="not a valid .npy"):
        tokens.load_codes(pickled)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(5, dtype=np.int16))
    with pytest.raises(FormatError, match=r"\[C, n_q, F\]"):
        tokens.load_codes(flat)
    neg = tmp_path / "neg.npy"
    np.save(neg, -np.ones((1, 1, 2), dtype=np.int16))
    with pytest.raises(FormatError, match="negative"):
        tokens.load_codes(neg)
    garbage = tmp_path / "g.npy"
    garbage.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(FormatError):
        tokens.load_codes(garbage)
    rcq = tmp_path / "x.rcq"
    rcq.write_bytes(b"not an rcq")
    with pytest.raises(FormatError):
        tokens.load_codes(rcq)


def test_load_codes_reads_rcq(tmp_path):
    from rotcodec.io.container import Header, write_rcq

    header = Header(model="m@1", model_hash="ab", sample_rate=16000, original_sample_rate=16000,
                    channels=1, n_q=2, bits=8, frame_rate=50.0, frames=3, length=900)
    codes = np.array([[[1, 2, 3], [250, 0, 7]]])
    buf = io.BytesIO()
    write_rcq(buf, header, codes)
    path = tmp_path / "t.rcq"
    path.write_bytes(buf.getvalue())
    assert (tokens.load_codes(path) == codes).all()
