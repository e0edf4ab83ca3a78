"""The context model's integer tables against a plain int64 reference of the formula in
rotcodec.entropy.model's docstring (no floats at all): the bundled model, and random models with
extreme weights (int8 -128 / 127, activations clipped at 0 and A) at the edge of the 2**53 bounds,
through the encoder's path (``IntContextModel.tables``), the decoder's (``SequentialTables``,
``decode_frame``) and a whole encode / decode. No torch."""

import hashlib

import numpy as np
import pytest

from rotcodec.entropy.bundled import for_codec
from rotcodec.entropy.model import FILE_FORMAT, IntContextModel, SequentialTables
from rotcodec.entropy.payload import decode_codes, encode_codes


def reference(model: IntContextModel, codes: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Tables ``[C, n_q, F, K]`` in int64 arithmetic (``>>`` on int64 is floor), and the number of
    nonzero hidden activations of each table (which output path the decoder takes)."""
    m, a = model.meta, model.arrays
    K, S, P, A = m["K"], m["S"], m["P"], m["A"]
    C, n_q, F = codes.shape
    emb = a["emb"].astype(np.int64) * a["mult"][..., None].astype(np.int64)  # [T, K + 1, D]
    padded = np.concatenate([np.full((C, n_q, P), K, dtype=np.int64), codes.astype(np.int64)], axis=-1)
    lut = a["lut"]
    out, nonzero = np.empty((C, n_q, F, K), dtype=np.int64), []
    for c in range(C):
        for f in range(F):
            for s in range(n_q):
                h0 = a["stage_bias"][s] + a["nq_bias"][n_q]
                for lag in range(1, P + 1):
                    for s2 in range(n_q):
                        h0 = h0 + emb[(lag - 1) * S + s2, padded[c, s2, P + f - lag]]
                for s2 in range(s):
                    h0 = h0 + emb[P * S + s2, codes[c, s2, f]]
                a1 = np.clip((h0 * m["m0"] + 2 ** (m["sh0"] - 1)) >> m["sh0"], 0, A)
                x = (a["w1"][s].astype(np.int64) @ a1 + a["b1"][s]) * a["m1"][s]
                a2 = np.clip((x + 2 ** (m["sh1"] - 1)) >> m["sh1"], 0, A)
                z = ((a["wo"][s].astype(np.int64) @ a2 + a["bo"][s]) * a["mo"][s] + 2 ** (m["sho"] - 1)) >> m["sho"]
                out[c, s, f] = lut[np.minimum(z.max() - z, len(lut) - 1)]
                nonzero.append(int(np.count_nonzero(a2)))
    return out, nonzero


def random_model(seed: int, *, sho: int = 32, mo: tuple[int, int] = (2**19, 2**20), off: float = 0.0, D: int = 64,
                 P: int = 2) -> IntContextModel:
    """Weights drawn from the int8 extremes; ``off``: the fraction of hidden units held at 0."""
    rng = np.random.default_rng(seed)
    K, S, A = 40, 3, 4095
    T = P * S + S - 1

    def int8(*shape):
        return rng.choice(np.array([-128, -127, -1, 0, 1, 126, 127], dtype=np.int8), size=shape)

    b1 = rng.integers(-2**24, 2**24, (S, D))
    b1[:, : int(off * D)] = -2**26  # always below 0 after the ReLU: few nonzero activations
    meta = {"format": FILE_FORMAT, "K": K, "S": S, "P": P, "D": D, "A": A, "Q": 32, "m0": 2**24 - 3,
            "sh0": 32, "sh1": 30, "sho": sho, "codec": "random@1", "codec_hash": "0" * 16}
    arrays = {"emb": int8(T, K + 1, D), "mult": rng.integers(1, 4097, (T, K + 1)).astype(np.int32),
              "stage_bias": rng.integers(-2**18, 2**18, (S, D)), "nq_bias": rng.integers(-2**18, 2**18, (S + 1, D)),
              "w1": int8(S, D, D), "b1": b1, "m1": rng.integers(2**19, 2**20, (S, D)),
              "wo": int8(S, K, D), "bo": rng.integers(-1000, 1000, (S, K)), "mo": rng.integers(*mo, (S, K)),
              "lut": np.sort(rng.integers(1, 2**32 // K, 100))[::-1].copy()}
    return IntContextModel(meta, arrays)


def check(model: IntContextModel, codes: np.ndarray) -> list[int]:
    want, nonzero = reference(model, codes)
    assert (model.tables(codes) == want).all()  # the encoder's path
    C, n_q, F = codes.shape
    seq = SequentialTables(model, C, n_q)
    for f in range(F):
        for s in range(n_q):
            assert (seq.next_tables() == want[:, s, f]).all()  # the decoder's path
            seq.push(codes[:, s, f])
    data = encode_codes(model, codes)
    assert (decode_codes(model, data, C, n_q, F) == codes).all()  # decode_frame
    return nonzero


@pytest.mark.parametrize("shape", [(1, 12, 6), (2, 5, 4), (1, 1, 3)])
def test_bundled_model_tables_equal_the_integer_reference(shape):
    _, model = for_codec("stft16k-cpu")
    check(model, np.random.default_rng(sum(shape)).integers(0, 1024, size=shape))


def test_bundled_model_tables_are_unchanged():
    """The tables and bytes of the implementation before the decoder was sped up (a digest)."""
    _, model = for_codec("stft16k-cpu")
    rng = np.random.default_rng(123)
    h = hashlib.sha256()
    for shape in [(1, 12, 16), (2, 7, 9), (1, 3, 1)]:
        codes = rng.integers(0, 1024, size=shape)
        h.update(model.tables(codes).astype("<i8").tobytes())
        h.update(encode_codes(model, codes))
    assert h.hexdigest() == "66c47de27ea178affdb0f473d2ccc8c18fbe6547b9b6b4ac5bcba2d1dce9c38d"


@pytest.mark.parametrize("lifted", [True, False])
def test_extreme_random_models_give_the_integer_reference(lifted):
    """Output sums up to 2**52.4 (``lifted=False``: too close to 2**53 for the lift, so np.floor),
    the decoder's sparse output path (most hidden units off) and its dense one."""
    # lifted: |Wo a2| * mo <= 64 * 4095 * 128 * 2**20; not: * 1.8e8 ~ 2**52.4 < 2**53
    kw = dict(sho=32, mo=(2**19, 2**20)) if lifted else dict(sho=40, mo=(170_000_000, 180_000_001))
    one_channel = []  # nonzero hidden activations where the decoder has one row
    for seed, off in ((0, 0.0), (1, 0.8)):
        model = random_model(seed, off=off, **kw)
        assert model._lifted == lifted
        rng = np.random.default_rng(seed)
        one_channel += check(model, rng.integers(0, 40, size=(1, 3, 7)))
        check(model, rng.integers(0, 40, size=(2, 2, 3)))
    rows = [n + 1 for n in one_channel]  # with the bias row
    assert min(rows) <= model._sparse_rows < max(rows)  # both output paths ran


@pytest.mark.parametrize("D, P", [(1, 2), (5, 0), (8, 1)])
def test_small_widths_and_no_previous_frames(D, P):
    check(random_model(D + P, D=D, P=P), np.random.default_rng(D).integers(0, 40, size=(1, 3, 5)))
    check(random_model(D + P, D=D, P=P, off=0.5), np.random.default_rng(D).integers(0, 40, size=(2, 3, 4)))


def test_activations_reach_both_clips():
    """The random models drive a1 and a2 to 0 and to A (so the bounds are met at their edges)."""
    model = random_model(0)
    m, a = model.meta, model.arrays
    codes = np.random.default_rng(0).integers(0, 40, size=(1, 3, 5))
    h0 = model.first_layer(codes)  # integers times 2**-sh0
    a1 = np.clip(np.floor(h0), 0, m["A"])
    assert (a1 == 0).any() and (a1 == m["A"]).any()
    x = (a["w1"][0].astype(np.int64) @ a1[0, 0].astype(np.int64).T + a["b1"][0][:, None]) * a["m1"][0][:, None]
    a2 = np.clip((x + 2 ** (m["sh1"] - 1)) >> m["sh1"], 0, m["A"])
    assert (a2 == 0).any() and (a2 == m["A"]).any()
