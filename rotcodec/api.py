"""The public API: find a model, compress audio to ``.rcq`` bytes or files, and back.

::

    import rotcodec
    data = rotcodec.compress(wav, 44100, model="model.pt", kbps=6)   # wav [C, T] or [T]
    wav_hat, sr = rotcodec.decompress(data, model="model.pt")        # [C, T] at 44100 Hz
    rotcodec.compress_file("talk.flac", "talk.rcq", model="model.pt", kbps=6)
    rotcodec.decompress_file("talk.rcq", "talk.wav", model="model.pt")
    codes, gains = rotcodec.encode("talk.flac", kbps=6, return_gains=True)  # [C, n_q, F], [C, B]
    wav = rotcodec.decode(codes, sample_rate=44100, gains=gains)     # [C, T] float32

Channels are coded one by one as mono signals (like DAC); audio is resampled to the model's rate
and back to its own rate on decoding, and comes back with exactly its original length. Before
the encoder, every gain block (``GAIN_FRAMES`` frames, 1 s) of the model-rate signal loses its
DC offset and is brought to -26 dBFS with one int8 gain (:mod:`rotcodec.coding.conditioning`);
the gains travel with the codes and decoding divides them out, so the audio comes back at its
own level. ``condition=False`` encodes the raw signal instead (no gains). Files are
processed in blocks and chunks, so their length does not bound the memory used. Every malformed
``.rcq`` input raises :class:`~rotcodec.errors.FormatError`, including files made by another model.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import torch

from rotcodec.bitrate import BitrateCapped, check_kbps, stages_for_kbps
from rotcodec.checks import is_int, positive_int
from rotcodec.coding.chunks import decode_stream
from rotcodec.coding.conditioning import GAIN_FRAMES
from rotcodec.coding.pipeline import (
    check_beam, check_gains, decode_rcq, encode_audio, encode_to_rcq, read_checked, ungain_stream,
)
from rotcodec.coding.resampling import check_resampling, resample_stream, resampled_length
from rotcodec.errors import AudioError, FormatError
from rotcodec.files import atomic_writer, check_output
from rotcodec.io.audio import AudioWriter, audio_info, iter_audio_blocks, to_tensor_2d
from rotcodec.io.container import Header, read_header
from rotcodec.model.codec import Codec
from rotcodec.models import (  # noqa: F401 - found here before rotcodec.models existed
    NO_MODEL_MESSAGE, ModelArg, bundled_models, bundled_recipes, for_header, load_model, recipe_path, resolve_hashed,
)
from rotcodec.quantize.codes import check_codes

__all__ = ["load_model", "compress", "decompress", "compress_file", "decompress_file", "model_for_header",
           "bundled_models", "bundled_recipes", "recipe_path", "encode", "decode", "stages_for_kbps", "BitrateCapped",
           "NO_MODEL_MESSAGE"]

BLOCK_SECONDS = 10.0  # audio read (or sliced) at a time
Device = str | torch.device


def model_for_header(header: Header, model: ModelArg = None, device: Device = "cpu") -> Codec:
    """The model to decode a file with ``header``: ``model`` if given, else the bundled model
    the header names (when it ships with rotcodec), else the default bundled model. A model loaded
    here is shared by later calls (:func:`rotcodec.models.resolve`): do not change it."""
    return for_header(header.model, model, device)[0]


def _read_for_model(f: IO[bytes], model: ModelArg, device: Device = "cpu",
                    ) -> tuple[Codec, Header, torch.Tensor, torch.Tensor | None]:
    """Read the ``.rcq`` in the seekable stream ``f`` (from its start) for decoding: its header
    picks the model (:func:`model_for_header`), which checks it before the payload is read
    (:func:`~rotcodec.coding.pipeline.read_checked`; its message says whether ``model`` was given).
    Returns ``(model, header, codes, gains)``."""
    start = f.tell()
    codec, digest = for_header(read_header(f).model, model, device)
    f.seek(start)
    header, codes, gains = read_checked(f, codec, given=model is not None, model_hash=digest)
    return codec, header, codes, gains


def _check_rate(sample_rate) -> int:
    if not is_int(sample_rate, numpy=True):
        raise TypeError(f"sample_rate must be an int, got {type(sample_rate).__name__}")
    if not 1 <= sample_rate <= 1_000_000:
        raise ValueError(f"sample_rate must be in 1..1000000 Hz, got {sample_rate}")
    return int(sample_rate)


# ----- bytes -------------------------------------------------------------------------------------
def compress(wav: torch.Tensor | np.ndarray, sample_rate: int, model: ModelArg = None,
             kbps: float | None = None, condition: bool = True, beam: int | None = None,
             device: Device = "cpu", entropy: bool = False) -> bytes:
    """Compress float audio ``wav [C, T]`` (or ``[T]``) at ``sample_rate`` Hz to ``.rcq`` bytes.

    Args:
        model: a :class:`Codec`, a model file path or bundled name (loaded on ``device``, once:
            :func:`rotcodec.models.resolve`), or None (default model).
        kbps: target bitrate of the whole signal, all channels together (as Opus's
            ``--bitrate``: a stereo signal at 3 kbps gets 1.5 kbps a channel); every channel is
            coded with the most stages that fit (:func:`stages_for_kbps`). None: all stages.
            Above the model's maximum: all stages, with a :class:`BitrateCapped` warning.
        condition: remove DC and level each gain block before the encoder, storing the gains
            (one byte per channel and second); False: code the raw signal, no gains.
        beam: code paths the encoder keeps per frame (1: greedy); None: the model's own setting
            (``config.quantizer.beam``, saved in its file). Decoding does not depend on it.
        entropy: entropy-code the codes with the context model that ships beside ``model``
            (:mod:`rotcodec.entropy`): the same codes in fewer bytes; the file names its context
            model and decodes without options.

    Raises:
        AudioError: empty or non-finite audio, too many channels, unsupported sample rate.
        ValueError: ``kbps`` below one stage on every channel, bad shapes or dtypes, ``beam < 1``,
            ``entropy`` for a model without a context model.
    """
    sample_rate, kbps, beam = _check_rate(sample_rate), check_kbps(kbps), check_beam(beam)
    codec, digest = resolve_hashed(model, device)
    x = to_tensor_2d(wav)
    n_q = stages_for_kbps(codec, kbps, x.shape[0])
    step = max(1, int(BLOCK_SECONDS * sample_rate))
    blocks = (x[:, i: i + step] for i in range(0, x.shape[-1], step))
    buf = io.BytesIO()
    encode_to_rcq(codec, blocks, sample_rate, x.shape[0], x.shape[-1], n_q, buf, condition=condition,
                  beam=beam, model_hash=digest, entropy=bool(entropy))
    return buf.getvalue()


def decompress(data: bytes | bytearray | memoryview, model: ModelArg = None,
               device: Device = "cpu") -> tuple[torch.Tensor, int]:
    """Decode ``.rcq`` bytes to ``(wav [C, T] float32 tensor on the CPU, sample_rate)`` at the
    original rate and length (and level: the file's gains are divided out; a file without gains
    decodes at the reference level). ``model`` as in :func:`model_for_header`, on ``device``.

    Raises:
        FormatError: malformed, truncated or corrupt data, or data made by another model (the
            header is checked against the model before anything is decoded).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress() needs bytes, got {type(data).__name__}")
    codec, header, codes, gains = _read_for_model(io.BytesIO(data), model, device)
    wav = torch.cat(list(decode_rcq(codec, header, codes, gains=gains)), dim=-1)
    return wav, header.original_sample_rate


# ----- files -------------------------------------------------------------------------------------
def _file_blocks(path: Path, sample_rate: int, length: int) -> Iterator[torch.Tensor]:
    got = 0
    for block in iter_audio_blocks(path, max(1, int(BLOCK_SECONDS * sample_rate))):
        got += block.shape[-1]
        yield torch.from_numpy(block)
    if got < length:
        raise AudioError(f"{path} ended after {got} of the {length} samples its header announces")


def compress_file(in_path: str | os.PathLike, out_path: str | os.PathLike | IO[bytes], model: ModelArg = None,
                  kbps: float | None = None, force: bool = False, progress: bool = False,
                  condition: bool = True, beam: int | None = None, device: Device = "cpu",
                  entropy: bool = False) -> Header:
    """Compress an audio file (any format soundfile reads: wav, flac, ogg, mp3, ...; any channels
    and rate) to an ``.rcq`` file.

    Reads and encodes in blocks (bounded memory for any length); writes ``out_path`` atomically
    (a temp file renamed at the end), never over an existing file unless ``force``. ``out_path``
    may also be a writable binary stream (``sys.stdout.buffer``): the whole ``.rcq`` is written
    to it at the end, after all encoding succeeded. ``progress`` draws a bar on stderr for long
    inputs. ``model``, ``kbps`` (the whole file's bitrate), ``condition``, ``beam``, ``device`` and
    ``entropy`` as in :func:`compress`. Returns the header written.

    Raises:
        AudioError: missing, unreadable, empty or non-finite input, unsupported format or rate.
        FileExistsError: ``out_path`` exists and not ``force``.
        FileNotFoundError: the output folder does not exist (or no model, see :func:`load_model`).
        ValueError: ``kbps`` below one stage on every channel.
    """
    kbps, beam = check_kbps(kbps), check_beam(beam)
    in_path = Path(in_path)
    stream = hasattr(out_path, "write")
    if not stream:
        out_path = Path(out_path)
        check_output(out_path, force)
    sample_rate, channels, length = audio_info(in_path)
    codec, digest = resolve_hashed(model, device)
    n_q = stages_for_kbps(codec, kbps, channels)
    blocks = _file_blocks(in_path, sample_rate, length)
    options = dict(condition=condition, beam=beam, model_hash=digest, entropy=bool(entropy))
    if stream:
        return encode_to_rcq(codec, blocks, sample_rate, channels, length, n_q, out_path, progress, **options)
    with atomic_writer(out_path, force) as f:
        return encode_to_rcq(codec, blocks, sample_rate, channels, length, n_q, f, progress, **options)


def decompress_file(in_path: str | os.PathLike | IO[bytes], out_path: str | os.PathLike, model: ModelArg = None,
                    force: bool = False, progress: bool = False, device: Device = "cpu") -> Header:
    """Decode an ``.rcq`` file to an audio file (``.wav``/``.flac``: 16-bit PCM; ``.ogg``: Vorbis).

    Decodes and writes in chunks (bounded memory); the output appears only when complete.
    ``in_path`` may also be a readable binary stream (``sys.stdin.buffer``), read to its end
    first (codes are small: an hour at 6 kbps is 2.7 MB). ``model`` as in :func:`model_for_header`
    (None: the bundled model the file names, else the default one), loaded on ``device`` when
    it is not a :class:`Codec` already. ``progress`` draws a bar on stderr. Returns the header read.

    Raises:
        FormatError: malformed input or made by another model (checked before decoding).
        FileNotFoundError / IsADirectoryError: the input is missing or a folder, or the output
            folder is missing.
        FileExistsError: ``out_path`` exists and not ``force``.
        AudioError: unsupported output extension.
    """
    out_path = Path(out_path)
    if hasattr(in_path, "read"):
        check_output(out_path, force)
        codec, header, codes, gains = _read_for_model(io.BytesIO(in_path.read()), model, device)
    else:
        in_path = Path(in_path)
        if in_path.is_dir():
            raise IsADirectoryError(f"is a directory, not an .rcq file: {in_path}")
        if not in_path.is_file():
            raise FileNotFoundError(f"no such file: {in_path}")
        check_output(out_path, force)
        with open(in_path, "rb") as f:
            codec, header, codes, gains = _read_for_model(f, model, device)
    writer = AudioWriter(out_path, header.original_sample_rate, header.channels, force=force)
    with writer:
        for block in decode_rcq(codec, header, codes, progress, gains=gains):
            writer.write(block)
    return header


# ----- codes as arrays (language models) ---------------------------------------------------------
def encode(audio: str | os.PathLike | torch.Tensor | np.ndarray, sample_rate: int | None = None,
           model: ModelArg = None, kbps: float | None = None, exact: bool = False, condition: bool = True,
           return_gains: bool = False, beam: int | None = None, device: Device = "cpu"):
    """The codes of an audio file or signal, as an array ``[C, n_q, F]`` (int64).

    Args:
        audio: an audio file path (any rate and channels soundfile reads), or float samples
            ``[C, T]`` / ``[T]`` at ``sample_rate`` Hz, a numpy array or a tensor.
        sample_rate: required for samples; ignored for files.
        model, kbps, condition, beam, device: as in :func:`compress` (``kbps`` is the bitrate of
            all channels together).
        exact: float64 encoding, so that the codes never depend on the chunking (slower; see
            :mod:`rotcodec.coding.chunks`).
        return_gains: also return the gain codes, which :func:`decode` needs to give the audio
            back at its own level (without them it decodes at the reference level, -26 dBFS).

    Returns:
        codes ``[C, n_q, F]``, ``F = ceil(T' / hop)`` where ``T'`` is the length at the model's
        rate (the audio is resampled to it first); the same codes an ``.rcq`` of it holds.
        A numpy array. Flatten them for a language model with :mod:`rotcodec.tokens`. With
        ``return_gains``, ``(codes, gains)``: gains int8 numpy ``[C, ceil(F / GAIN_FRAMES)]``,
        None when not ``condition``.
    """
    kbps, beam = check_kbps(kbps), check_beam(beam)
    codec = resolve_hashed(model, device)[0]
    if isinstance(audio, (str, os.PathLike)):
        sample_rate, channels, length = audio_info(audio)
        blocks: Iterable[torch.Tensor] = _file_blocks(Path(audio), sample_rate, length)
    else:
        if sample_rate is None:
            raise TypeError("encode() of samples needs their sample_rate")
        sample_rate = _check_rate(sample_rate)
        x = to_tensor_2d(audio)
        if not torch.isfinite(x).all():
            raise AudioError("audio contains NaN or infinite samples")
        channels, length, blocks = x.shape[0], x.shape[-1], [x]
    n_q = stages_for_kbps(codec, kbps, channels)
    codes, gains = encode_audio(codec, blocks, sample_rate, channels, length, n_q, exact=exact, condition=condition,
                                beam=beam)
    codes, gains = codes.to(torch.int64).numpy(), None if gains is None else gains.numpy()
    return (codes, gains) if return_gains else codes


def _decode_order(args: tuple, sample_rate, model, length):
    """``(sample_rate, model, length)`` of a :func:`decode` call: by name, or positionally in the
    order ``(sample_rate, model, length)``; the order before 0.2, ``(model, sample_rate, length)``
    (a model first), still works, with a DeprecationWarning."""
    if len(args) > 3:
        raise TypeError(f"decode() takes at most 4 positional arguments ({len(args) + 1} given)")
    old = bool(args) and (args[0] is None and len(args) > 1 or isinstance(args[0], (Codec, str, os.PathLike)))
    if old:
        warnings.warn("decode(codes, model, sample_rate) is deprecated: the order is decode(codes, "
                      "sample_rate, model), as in compress and encode; or pass them by name",
                      DeprecationWarning, stacklevel=3)
    names = ("model", "sample_rate", "length") if old else ("sample_rate", "model", "length")
    given = {"sample_rate": sample_rate, "model": model, "length": length}
    for name, value in zip(names, args):
        if given[name] is not None:
            raise TypeError(f"decode() got multiple values for argument {name!r}")
        given[name] = value
    return given["sample_rate"], given["model"], given["length"]


def decode(codes: torch.Tensor | np.ndarray, *args, sample_rate: int | None = None, model: ModelArg = None,
           length: int | None = None, gains: torch.Tensor | np.ndarray | None = None,
           gain_frames: int = GAIN_FRAMES, device: Device = "cpu") -> torch.Tensor:
    """Audio ``[C, T]`` (float32 tensor, CPU) from codes ``[C, n_q, F]`` (or ``[n_q, F]``), chunk by
    chunk. Called as ``decode(codes, sample_rate, model, length)`` or with names (the order of
    :func:`compress` and :func:`encode`: audio or codes, rate, model).

    Args:
        sample_rate: the rate of the audio returned (default: the model's); resampled from it.
        model, device: as in :func:`compress`.
        length: samples to return at that rate (default: all ``F`` frames, resampled); trims the
            zero padding of the last frame when the original length is known.
        gains: int8 gain codes ``[C, ceil(F / gain_frames)]`` (or ``[B]`` for one channel) from
            :func:`encode` with ``return_gains``: divided out, giving the audio its own level back.
            None (a language model's codes): the audio at the reference level, -26 dBFS.
        gain_frames: frames per gain block of ``gains``.

    Raises:
        TypeError: codes that are not an integer array (:func:`~rotcodec.quantize.codes.check_codes`).
        FormatError: codes not ``[C, n_q, F]`` with ``n_q <= model.n_q`` and values in the
            codebook, a ``length`` the frames cannot hold, or gains of another shape or outside
            the encoder's range.
    """
    sample_rate, model, length = _decode_order(args, sample_rate, model, length)
    codec = resolve_hashed(model, device)[0]
    x = check_codes(codes, codec.config.quantizer.codebook_size, codec.n_q, dims=(2, 3))
    x = x[None] if x.dim() == 2 else x
    sr = codec.sample_rate if sample_rate is None else _check_rate(sample_rate)
    check_resampling(codec.sample_rate, sr)
    frames_length = x.shape[-1] * codec.hop_length
    if length is None:
        model_length, length = frames_length, resampled_length(frames_length, codec.sample_rate, sr)
    else:
        if not is_int(length, numpy=True):
            raise TypeError(f"length must be an int, got {type(length).__name__}")
        length = int(length)
        model_length = resampled_length(length, sr, codec.sample_rate) if length >= 1 else 0
    if length < 1 or -(-model_length // codec.hop_length) != x.shape[-1]:
        raise FormatError(f"length {length} at {sr} Hz does not match {x.shape[-1]} frames "
                          f"of {codec.hop_length} samples at {codec.sample_rate} Hz")
    blocks = decode_stream(codec, x, model_length)
    if gains is not None:
        positive_int("gain_frames", gain_frames, numpy=True)
        g = torch.as_tensor(gains)
        g = check_gains(g[None] if g.dim() == 1 else g, x.shape[0], x.shape[-1], int(gain_frames))
        blocks = ungain_stream(blocks, g, int(gain_frames) * codec.hop_length)
    return torch.cat(list(resample_stream(blocks, model_length, codec.sample_rate, sr)), dim=-1)[:, :length]
