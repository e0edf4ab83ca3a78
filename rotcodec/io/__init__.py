"""File formats: bit packing, the ``.rcq`` token container, and audio file I/O.

Nothing here imports the model; the container and bit packing work on any ``IO[bytes]``.
"""

from rotcodec.io.audio import (
    AudioWriter,
    audio_info,
    iter_audio_blocks,
    read_audio,
    resample,
    to_tensor_2d,
    write_audio,
)
from rotcodec.io.bitpack import pack_codes, packed_size, unpack_codes
from rotcodec.io.container import (
    FORMAT_VERSION,
    MAGIC,
    PAYLOAD_BITPACKED,
    Header,
    dumps,
    loads,
    loads_gains,
    peek_version,
    rcq_size,
    read_header,
    read_rcq,
    read_rcq_gains,
    write_rcq,
)

__all__ = [
    "FORMAT_VERSION", "MAGIC", "PAYLOAD_BITPACKED", "AudioWriter", "Header", "audio_info", "dumps",
    "iter_audio_blocks", "loads", "loads_gains", "pack_codes", "peek_version", "packed_size", "rcq_size", "read_audio",
    "read_header", "read_rcq", "read_rcq_gains", "resample", "to_tensor_2d", "unpack_codes", "write_audio",
    "write_rcq",
]
