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
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import IO

import numpy as np
import torch

from rotcodec.coding.chunks import decode_stream
from rotcodec.coding.conditioning import GAIN_FRAMES
from rotcodec.coding.pipeline import (
    check_gains, decode_rcq, encode_audio, encode_to_rcq, read_checked, ungain_stream,
)
from rotcodec.coding.resampling import check_resampling, resample_stream, resampled_length
from rotcodec.errors import AudioError, FormatError
from rotcodec.files import atomic_writer, check_output
from rotcodec.io.audio import AudioWriter, audio_info, iter_audio_blocks, to_tensor_2d
from rotcodec.io.container import Header, read_header
from rotcodec.model.codec import Codec
from rotcodec.model.loading import load_model_file
from rotcodec.text import counted

__all__ = ["load_model", "compress", "decompress", "compress_file", "decompress_file", "model_for_header",
           "bundled_models", "bundled_recipes", "recipe_path", "encode", "decode", "stages_for_kbps", "BitrateCapped", "NO_MODEL_MESSAGE"]

NO_MODEL_MESSAGE = ("no model given and no bundled model found; pass model=PATH "
                    "(a file written by `rotcodec train` or Codec.save)")
BLOCK_SECONDS = 10.0  # audio read (or sliced) at a time
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ModelArg = Codec | str | os.PathLike | None


# ----- models ------------------------------------------------------------------------------------
def _pretrained_dir():
    """The folder of bundled models, ``rotcodec/pretrained/`` (a Traversable; may not exist)."""
    return resources.files("rotcodec").joinpath("pretrained")


def _pretrained(filename: str):
    return _pretrained_dir().joinpath(filename)


def bundled_models() -> list[str]:
    """Names of the models shipped in ``rotcodec/pretrained/`` (``<name>.pt``), sorted."""
    folder = _pretrained_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt") and p.is_file())


def _recipes_dir():
    """The folder of bundled training recipes, ``rotcodec/recipes/`` (a Traversable). In the source
    tree it is a link to the top-level ``recipes/`` folder, their one copy; a wheel or a regular
    install carries the files themselves (package data)."""
    return resources.files("rotcodec").joinpath("recipes")


def bundled_recipes() -> list[str]:
    """Names of the bundled training recipes (``rotcodec/recipes/<name>.toml``), sorted."""
    folder = _recipes_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml") and p.is_file())


def recipe_path(name_or_path: str | os.PathLike) -> Path:
    """The recipe file for ``name_or_path``: an existing ``.toml`` file as given, else the bundled
    recipe of that name (``stft16k_cpu``), from any install (an unpacked one: not a zip).

    Raises:
        FileNotFoundError: neither (the message lists the bundled names).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = os.fspath(name_or_path)
    if _NAME_RE.fullmatch(text) and _recipes_dir().joinpath(f"{text}.toml").is_file():
        return Path(str(_recipes_dir().joinpath(f"{text}.toml")))
    raise FileNotFoundError(f"no such recipe file or bundled recipe: {text}; bundled recipes: "
                            f"{', '.join(bundled_recipes()) or 'none'}")


def _default_name() -> str | None:
    """The default bundled model: the name in ``pretrained/default.txt``, else ``default``."""
    note = _pretrained("default.txt")
    if note.is_file():
        for line in note.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                return line
    return "default" if _pretrained("default.pt").is_file() else None


def _load_file(path: Path, device: str | torch.device) -> Codec:
    """:func:`load_model_file`, with every failure to parse the file reported as FormatError.

    ``torch.load(weights_only=True)`` raises a zoo of exception types on arbitrary bytes
    (KeyError, IndexError, ... besides those ``load_model_file`` already converts).
    """
    try:
        return load_model_file(path, device)
    except (FormatError, OSError, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - any other parse failure means "not a model file"
        detail = " ".join(str(err).split()) or type(err).__name__
        raise FormatError(f"{path} is not a loadable rotcodec model file ({type(err).__name__}: {detail})") from None


def _load_bundled(name: str, device: str | torch.device) -> Codec:
    with resources.as_file(_pretrained(f"{name}.pt")) as path:
        return _load_file(path, device)


def load_model(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Codec:
    """Load a model in eval mode on ``device``.

    Args:
        name_or_path: a model file written by :meth:`Codec.save` (or ``rotcodec train``); or the
            name of a model bundled in ``rotcodec/pretrained/<name>.pt``; or None for the default
            bundled model (named in ``rotcodec/pretrained/default.txt``).

    Raises:
        FileNotFoundError: no such file or bundled model; with None, no bundled model at all
            (the message says how to get one).
        FormatError: the file is not a valid rotcodec model file.
    """
    if name_or_path is None:
        name = _default_name()
        if name is None or not _pretrained(f"{name}.pt").is_file():
            raise FileNotFoundError(NO_MODEL_MESSAGE)
        return _load_bundled(name, device)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"model must be a Codec, a path or a name, got {type(name_or_path).__name__}")
    path = Path(name_or_path)
    if path.is_dir():
        raise IsADirectoryError(f"model path is a directory, not a model file: {path}")
    if path.is_file():
        return _load_file(path, device)
    text = os.fspath(name_or_path)
    if _NAME_RE.fullmatch(text) and _pretrained(f"{text}.pt").is_file():
        return _load_bundled(text, device)
    bundled = bundled_models()
    known = f"; bundled models: {', '.join(bundled)}" if bundled else ""
    raise FileNotFoundError(f"no such model file or bundled model: {text}{known}")


def _resolve(model: ModelArg, device: str | torch.device = "cpu") -> Codec:
    if isinstance(model, Codec):
        return model
    return load_model(model, device)


def model_for_header(header: Header, model: ModelArg = None, device: str | torch.device = "cpu") -> Codec:
    """The model to decode a file with ``header``: ``model`` if given, else the bundled model
    the header names (when it ships with rotcodec), else the default bundled model."""
    if model is None:
        name = header.model.rsplit("@", 1)[0]
        if _NAME_RE.fullmatch(name) and _pretrained(f"{name}.pt").is_file():
            return _load_bundled(name, device)
    return _resolve(model, device)


def _read_for_model(f: IO[bytes], model: ModelArg, device: str | torch.device = "cpu",
                    ) -> tuple[Codec, Header, torch.Tensor, torch.Tensor | None]:
    """Read the ``.rcq`` in the seekable stream ``f`` (from its start) for decoding: its header
    picks the model (:func:`model_for_header`), which checks it before the payload is read
    (:func:`~rotcodec.coding.pipeline.read_checked`; its message says whether ``model`` was given).
    Returns ``(model, header, codes, gains)``."""
    start = f.tell()
    codec = model_for_header(read_header(f), model, device)
    f.seek(start)
    header, codes, gains = read_checked(f, codec, given=model is not None)
    return codec, header, codes, gains


class BitrateCapped(UserWarning):
    """A bitrate above the model's maximum was asked for: the audio is coded with every stage."""


def _stages(codec: Codec, kbps: float | None, channels: int) -> tuple[int, bool]:
    """``(stages per channel, capped)`` for ``kbps`` in all over ``channels``; see :func:`stages_for_kbps`."""
    if kbps is None:
        return codec.n_q, False
    if isinstance(kbps, bool) or not isinstance(kbps, (int, float, np.number)) or not math.isfinite(kbps) or kbps <= 0:
        raise ValueError(f"kbps must be a positive number, got {kbps!r}")
    top, per_stage = codec.bitrate() * channels / 1000, codec.bitrate(1) * channels / 1000
    if kbps > top * (1 + 1e-9):
        return codec.n_q, True
    if channels == 1:
        return codec.n_q_for_kbps(kbps), False
    if kbps < per_stage * (1 - 1e-9):
        raise ValueError(f"{kbps:g} kbps over {channels} channels is below one stage a channel "
                         f"({per_stage:g} kbps in all) for this model; choose between {per_stage:g} and {top:g} kbps")
    return codec.n_q_for_kbps(kbps / channels), False


def stages_for_kbps(model: Codec, kbps: float | None, channels: int = 1) -> int:
    """The stages each channel is coded with when a file of ``channels`` channels may take ``kbps``
    in all (the whole file's bitrate, as Opus counts it: stereo at 3 kbps is 1.5 kbps a channel):
    the most whose bitrate, times ``channels``, does not exceed ``kbps``; None: all stages.

    Above the model's maximum (every stage on every channel) it warns (:class:`BitrateCapped`,
    naming the cap; Python shows a warning once per place it comes from) and returns all stages.

    Raises:
        ValueError: ``kbps`` not a positive number, or below one stage on every channel.
    """
    n_q, capped = _stages(model, kbps, channels)
    if capped:
        top = model.bitrate() * channels / 1000
        warnings.warn(f"{kbps:g} kbps is above this model's maximum for {counted(channels, 'channel')} "
                      f"({top:g} kbps, all {counted(n_q, 'stage')}): capped at {top:g} kbps",
                      BitrateCapped, stacklevel=3)
    return n_q


def _check_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise TypeError(f"sample_rate must be an int, got {type(sample_rate).__name__}")
    if not 1 <= sample_rate <= 1_000_000:
        raise ValueError(f"sample_rate must be in 1..1000000 Hz, got {sample_rate}")
    return int(sample_rate)


# ----- bytes -------------------------------------------------------------------------------------
def compress(wav: torch.Tensor | np.ndarray, sample_rate: int, model: ModelArg = None,
             kbps: float | None = None, condition: bool = True) -> bytes:
    """Compress float audio ``wav [C, T]`` (or ``[T]``) at ``sample_rate`` Hz to ``.rcq`` bytes.

    Args:
        model: a :class:`Codec`, a model file path or bundled name, or None (default model).
        kbps: target bitrate of the whole signal, all channels together (as Opus's
            ``--bitrate``: a stereo signal at 3 kbps gets 1.5 kbps a channel); every channel is
            coded with the most stages that fit (:func:`stages_for_kbps`). None: all stages.
            Above the model's maximum: all stages, with a :class:`BitrateCapped` warning.
        condition: remove DC and level each gain block before the encoder, storing the gains
            (one byte per channel and second); False: code the raw signal, no gains.

    Raises:
        AudioError: empty or non-finite audio, too many channels, unsupported sample rate.
        ValueError: ``kbps`` below one stage on every channel, bad shapes or dtypes.
    """
    sample_rate = _check_rate(sample_rate)
    codec = _resolve(model)
    x = to_tensor_2d(wav)
    n_q = stages_for_kbps(codec, kbps, x.shape[0])
    step = max(1, int(BLOCK_SECONDS * sample_rate))
    blocks = (x[:, i: i + step] for i in range(0, x.shape[-1], step))
    buf = io.BytesIO()
    encode_to_rcq(codec, blocks, sample_rate, x.shape[0], x.shape[-1], n_q, buf, condition=condition)
    return buf.getvalue()


def decompress(data: bytes | bytearray | memoryview, model: ModelArg = None) -> tuple[torch.Tensor, int]:
    """Decode ``.rcq`` bytes to ``(wav [C, T] float32, sample_rate)`` at the original rate and length
    (and level: the file's gains are divided out; a file without gains decodes at the reference level).

    Raises:
        FormatError: malformed, truncated or corrupt data, or data made by another model (the
            header is checked against the model before anything is decoded).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress() needs bytes, got {type(data).__name__}")
    codec, header, codes, gains = _read_for_model(io.BytesIO(data), model)
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
                  condition: bool = True) -> Header:
    """Compress an audio file (any format soundfile reads: wav, flac, ogg, mp3, ...; any channels
    and rate) to an ``.rcq`` file.

    Reads and encodes in blocks (bounded memory for any length); writes ``out_path`` atomically
    (a temp file renamed at the end), never over an existing file unless ``force``. ``out_path``
    may also be a writable binary stream (``sys.stdout.buffer``): the whole ``.rcq`` is written
    to it at the end, after all encoding succeeded. ``progress`` draws a bar on stderr for long
    inputs. ``kbps`` (the whole file's bitrate) and ``condition`` as in :func:`compress`. Returns
    the header written.

    Raises:
        AudioError: missing, unreadable, empty or non-finite input, unsupported format or rate.
        FileExistsError: ``out_path`` exists and not ``force``.
        FileNotFoundError: the output folder does not exist (or no model, see :func:`load_model`).
        ValueError: ``kbps`` below one stage on every channel.
    """
    in_path = Path(in_path)
    stream = hasattr(out_path, "write")
    if not stream:
        out_path = Path(out_path)
        check_output(out_path, force)
    sample_rate, channels, length = audio_info(in_path)
    codec = _resolve(model)
    n_q = stages_for_kbps(codec, kbps, channels)
    blocks = _file_blocks(in_path, sample_rate, length)
    if stream:
        return encode_to_rcq(codec, blocks, sample_rate, channels, length, n_q, out_path, progress,
                             condition=condition)
    with atomic_writer(out_path, force) as f:
        return encode_to_rcq(codec, blocks, sample_rate, channels, length, n_q, f, progress, condition=condition)


def decompress_file(in_path: str | os.PathLike | IO[bytes], out_path: str | os.PathLike, model: ModelArg = None,
                    force: bool = False, progress: bool = False, device: str | torch.device = "cpu") -> Header:
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
           return_gains: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
    """The codes of an audio file or signal, as an array ``[C, n_q, F]`` (int64).

    Args:
        audio: an audio file path (any rate and channels soundfile reads), or float samples
            ``[C, T]`` / ``[T]`` at ``sample_rate`` Hz.
        sample_rate: required for samples; ignored for files.
        model, kbps, condition: as in :func:`compress` (``kbps`` is the bitrate of all channels
            together).
        exact: float64 encoding, so that the codes never depend on the chunking (slower; see
            :mod:`rotcodec.coding.chunks`).
        return_gains: also return the gain codes, which :func:`decode` needs to give the audio
            back at its own level (without them it decodes at the reference level, -26 dBFS).

    Returns:
        codes ``[C, n_q, F]``, ``F = ceil(T' / hop)`` where ``T'`` is the length at the model's
        rate (the audio is resampled to it first); the same codes an ``.rcq`` of it holds.
        Flatten them for a language model with :mod:`rotcodec.tokens`. With ``return_gains``,
        ``(codes, gains)``: gains int8 ``[C, ceil(F / GAIN_FRAMES)]``, None when not ``condition``.
    """
    codec = _resolve(model)
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
    codes, gains = encode_audio(codec, blocks, sample_rate, channels, length, n_q, exact=exact, condition=condition)
    codes = codes.to(torch.int64).numpy()
    if not return_gains:
        return codes
    return codes, None if gains is None else gains.numpy()


def _codes_tensor(codes, codec: Codec) -> torch.Tensor:
    """``codes`` as an int64 tensor ``[C, n_q, F]`` (``[n_q, F]`` is one channel), or FormatError."""
    if isinstance(codes, np.ndarray):
        if codes.dtype.kind not in "iu":
            raise FormatError(f"codes must be integers, got dtype {codes.dtype}")
        codes = torch.from_numpy(codes.astype(np.int64))
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"codes must be a numpy array or tensor, got {type(codes).__name__}")
    if codes.dtype.is_floating_point or codes.is_complex() or codes.dtype == torch.bool:
        raise FormatError(f"codes must be integers, got dtype {codes.dtype}")
    if codes.dim() == 2:
        codes = codes[None]
    if codes.dim() != 3 or codes.shape[-1] < 1:
        raise FormatError(f"codes must be [C, n_q, F] with F >= 1, got shape {tuple(codes.shape)}")
    if not 1 <= codes.shape[1] <= codec.n_q:
        raise FormatError(f"codes have {counted(codes.shape[1], 'stage')}, the model has {codec.n_q}")
    k = codec.config.quantizer.codebook_size
    lo, hi = int(codes.min()), int(codes.max())
    if lo < 0 or hi >= k:
        raise FormatError(f"code {lo if lo < 0 else hi} is outside the codebook 0..{k - 1}")
    return codes.long()


def decode(codes: torch.Tensor | np.ndarray, model: ModelArg = None, sample_rate: int | None = None,
           length: int | None = None, gains: torch.Tensor | np.ndarray | None = None,
           gain_frames: int = GAIN_FRAMES) -> torch.Tensor:
    """Audio ``[C, T]`` (float32, CPU) from codes ``[C, n_q, F]`` (or ``[n_q, F]``), chunk by chunk.

    Args:
        sample_rate: the rate of the audio returned (default: the model's); resampled from it.
        length: samples to return at that rate (default: all ``F`` frames, resampled); trims the
            zero padding of the last frame when the original length is known.
        gains: int8 gain codes ``[C, ceil(F / gain_frames)]`` (or ``[B]`` for one channel) from
            :func:`encode` with ``return_gains``: divided out, giving the audio its own level back.
            None (a language model's codes): the audio at the reference level, -26 dBFS.
        gain_frames: frames per gain block of ``gains``.

    Raises:
        FormatError: codes that are not integers ``[C, n_q, F]`` with ``n_q <= model.n_q`` and
            values in the codebook, a ``length`` the frames cannot hold, or gains of another
            shape or outside the encoder's range.
    """
    codec = _resolve(model)
    x = _codes_tensor(codes, codec)
    sr = codec.sample_rate if sample_rate is None else _check_rate(sample_rate)
    check_resampling(codec.sample_rate, sr)
    frames_length = x.shape[-1] * codec.hop_length
    if length is None:
        model_length, length = frames_length, resampled_length(frames_length, codec.sample_rate, sr)
    else:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)):
            raise TypeError(f"length must be an int, got {type(length).__name__}")
        length = int(length)
        model_length = resampled_length(length, sr, codec.sample_rate) if length >= 1 else 0
    if length < 1 or math.ceil(model_length / codec.hop_length) != x.shape[-1]:
        raise FormatError(f"length {length} at {sr} Hz does not match {x.shape[-1]} frames "
                          f"of {codec.hop_length} samples at {codec.sample_rate} Hz")
    blocks = decode_stream(codec, x, model_length)
    if gains is not None:
        if isinstance(gain_frames, bool) or not isinstance(gain_frames, (int, np.integer)) or gain_frames < 1:
            raise ValueError(f"gain_frames must be a positive int, got {gain_frames!r}")
        g = torch.as_tensor(gains)
        g = check_gains(g[None] if g.dim() == 1 else g, x.shape[0], x.shape[-1], int(gain_frames))
        blocks = ungain_stream(blocks, g, int(gain_frames) * codec.hop_length)
    out = torch.cat(list(resample_stream(blocks, model_length, codec.sample_rate, sr)), dim=-1)
    return out[:, :length]
