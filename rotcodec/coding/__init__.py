"""Coding long signals in bounded memory: chunked encode/decode, push-based streaming coders,
batches of different lengths, streaming resampling, and the pipelines between audio and ``.rcq``
files. The public functions are in :mod:`rotcodec.api`."""

from rotcodec.coding.chunks import (
    DEFAULT_CHUNK_FRAMES,
    decode_chunked,
    decode_stream,
    decoder_context_frames,
    encode_batch,
    encode_chunked,
    encode_stream,
    encoder_context_frames,
)
from rotcodec.coding.resampling import check_resampling, resample_stream, resampled_length
from rotcodec.coding.streaming import StreamDecoder, StreamEncoder

__all__ = [
    "DEFAULT_CHUNK_FRAMES", "StreamDecoder", "StreamEncoder", "check_resampling", "decode_chunked",
    "decode_stream", "decoder_context_frames", "encode_batch", "encode_chunked", "encode_stream",
    "encoder_context_frames", "resample_stream", "resampled_length",
]
