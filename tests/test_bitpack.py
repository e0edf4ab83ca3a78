"""Bit packing: exact sizes, round trips for every width, strict padding and range checks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotcodec.errors import FormatError
from rotcodec.io.bitpack import pack_codes, packed_size, unpack_codes


@pytest.mark.parametrize("bits", range(1, 17))
def test_round_trip_every_width(bits):
    rng = np.random.default_rng(bits)
    for count in (0, 1, 7, 8, 9, 1000, 1001):
        codes = rng.integers(0, 2**bits, size=count)
        data = pack_codes(codes, bits)
        assert isinstance(data, bytes)
        assert len(data) == packed_size(count, bits) == -(-count * bits // 8)
        out = unpack_codes(data, bits, count)
        assert out.dtype == np.int64 and out.shape == (count,)
        np.testing.assert_array_equal(out, codes)


@pytest.mark.parametrize("bits", range(1, 17))
def test_extreme_values(bits):
    codes = np.array([0, 2**bits - 1, 0, 2**bits - 1, 2**bits - 1])
    np.testing.assert_array_equal(unpack_codes(pack_codes(codes, bits), bits, 5), codes)


def test_layout_is_msb_first_and_zero_padded():
    # 3-bit codes 5, 3, 1 -> 101 011 001 -> 10101100 1(0000000)
    assert pack_codes(np.array([5, 3, 1]), 3) == bytes([0b10101100, 0b10000000])
    # 10-bit 0x3FF, 1 -> 11111111 11000000 0001(0000)
    assert pack_codes(np.array([0x3FF, 1]), 10) == bytes([0xFF, 0xC0, 0x10])
    assert pack_codes(np.array([0xABCD]), 16) == b"\xab\xcd"


def test_multidimensional_input_is_flattened_in_c_order():
    codes = np.arange(24).reshape(2, 3, 4)
    assert pack_codes(codes, 5) == pack_codes(codes.reshape(-1), 5)
    # a non-contiguous view is flattened in its logical C order
    view = codes.transpose(2, 0, 1)
    out = unpack_codes(pack_codes(view, 5), 5, view.size)
    np.testing.assert_array_equal(out, view.reshape(-1))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint64])
def test_integer_dtypes(dtype):
    codes = np.array([0, 1, 100, 255], dtype=dtype)
    np.testing.assert_array_equal(unpack_codes(pack_codes(codes, 8), 8, 4), codes.astype(np.int64))


@given(
    bits=st.integers(1, 16),
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(0, 300),
)
@settings(max_examples=150, deadline=None)
def test_round_trip_hypothesis(bits, seed, count):
    codes = np.random.default_rng(seed).integers(0, 2**bits, size=count)
    data = pack_codes(codes, bits)
    assert len(data) == packed_size(count, bits)
    np.testing.assert_array_equal(unpack_codes(data, bits, count), codes)


@given(data=st.binary(max_size=64), bits=st.integers(1, 16), count=st.integers(0, 64))
@settings(max_examples=200, deadline=None)
def test_unpack_random_bytes_only_format_error(data, bits, count):
    try:
        out = unpack_codes(data, bits, count)
    except FormatError:
        return
    assert out.shape == (count,) and (out >= 0).all() and (out < 2**bits).all()
    assert pack_codes(out, bits) == data  # whatever unpacks is canonical


@pytest.mark.parametrize("bits", [1, 3, 5, 7, 10, 13, 15])
def test_nonzero_padding_is_rejected(bits):
    count = 3  # 3 * bits is never a multiple of 8 for these widths
    data = bytearray(pack_codes(np.ones(count, dtype=int), bits))
    pad = len(data) * 8 - count * bits
    assert pad > 0
    for i in range(pad):
        bad = bytearray(data)
        bad[-1] |= 1 << i
        with pytest.raises(FormatError, match="padding"):
            unpack_codes(bytes(bad), bits, count)


def test_wrong_length_is_rejected():
    data = pack_codes(np.arange(10), 4)
    with pytest.raises(FormatError):
        unpack_codes(data[:-1], 4, 10)
    with pytest.raises(FormatError):
        unpack_codes(data + b"\0", 4, 10)
    with pytest.raises(FormatError):
        unpack_codes(b"\0", 4, 0)


@pytest.mark.parametrize("bits,bad", [(1, 2), (4, 16), (10, 1024), (16, 65536), (8, -1), (3, -5)])
def test_out_of_range_codes_raise_value_error(bits, bad):
    with pytest.raises(ValueError, match="does not fit"):
        pack_codes(np.array([0, bad, 1]), bits)


def test_bad_arguments():
    for bits in (0, 17, -1):
        with pytest.raises(ValueError):
            pack_codes(np.zeros(3, dtype=int), bits)
        with pytest.raises(ValueError):
            packed_size(3, bits)
    with pytest.raises(ValueError, match="integer"):
        pack_codes(np.zeros(3), 4)
    with pytest.raises(ValueError):
        packed_size(-1, 4)
    with pytest.raises(TypeError):
        packed_size(3, True)


def test_packed_size_values():
    assert packed_size(0, 10) == 0
    assert packed_size(1, 1) == 1
    assert packed_size(8, 1) == 1
    assert packed_size(9, 1) == 2
    assert packed_size(4, 10) == 5
    assert packed_size(2**34, 16) == 2**35


def test_large_array_round_trip():
    # ~2.5 M codes: the vectorised path must stay fast and memory-light.
    codes = np.random.default_rng(0).integers(0, 1024, size=2_500_000)
    data = pack_codes(codes, 10)
    assert len(data) == 2_500_000 * 10 // 8
    np.testing.assert_array_equal(unpack_codes(data, 10, codes.size), codes)
