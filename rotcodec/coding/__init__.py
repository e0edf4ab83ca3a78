"""Coding long signals in bounded memory: chunked encode/decode, streaming resampling, and the
pipelines between audio and ``.rcq`` files. The public functions are in :mod:`rotcodec.api`."""

from rotcodec.coding.chunks import (
    DEFAULT_CHUNK_FRAMES,
    decode_chunked,
    decode_stream,
    decoder_context_frames,
    encode_chunked,
    encode_stream,
    encoder_context_frames,
)
from rotcodec.coding.resampling import check_resampling, resample_stream, resampled_length

__all__ = [
    "DEFAULT_CHUNK_FRAMES", "check_resampling", "decode_chunked", "decode_stream",
    "decoder_context_frames", "encode_chunked", "encode_stream", "encoder_context_frames",
    "resample_stream", "resampled_length",
]
