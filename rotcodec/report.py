"""The listening report: one self-contained HTML page to hear and see what each bitrate does.

For each clip, the original and every decoding (rotcodec at each bitrate, and Opus at the same
nominal bitrates when asked) get an ``<audio controls>`` player, a spectrogram on the clip's
common colour scale and the clip's metrics; then the summary over all clips and the per-stage
codebook usage. Audio (16-bit FLAC) and pictures (PNG) are embedded as ``data:`` URIs, so the page
needs no network, no other file and no script. The numbers are those of ``rotcodec eval``
(:func:`rotcodec.evaluate.evaluate_clips`): real ``.rcq`` bytes, decoded at each clip's own rate.

    html = build_report(["samples/speech_en.wav"], model, [1.5, 3, 6], opus=True).html
"""

from __future__ import annotations

import datetime
import html
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import rotcodec
from rotcodec.bitrate import nominal_kbps, stages_for_kbps
from rotcodec.evaluate import Score, evaluate_clips, score_clips
from rotcodec.io.audio import read_audio
from rotcodec.model.codec import Codec
from rotcodec.model.loading import weights_hash
from rotcodec.opus import OPUS_MIN_KBPS, opus_missing, opus_roundtrip
from rotcodec.report_media import DB_RANGE, colorbar_png, data_uri, flac_bytes, spectrogram_pngs
from rotcodec.text import counted

__all__ = ["Report", "ReportTooLarge", "build_report", "DEFAULT_MAX_MB"]

DEFAULT_MAX_MB = 50.0
MB = 1_000_000


class ReportTooLarge(ValueError):
    """The page would embed more than the size limit allows."""


@dataclass
class Report:
    """A built page: ``html`` (its UTF-8 size is ``size`` bytes), the scores it shows, and notes
    (e.g. why Opus is missing)."""

    html: str
    size: int
    scores: list[Score]
    clips: list[str]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Clip:
    name: str
    wav: np.ndarray  # [C, T]
    sample_rate: int
    audio: dict[str, str] = field(default_factory=dict)  # label -> data URI (original first)
    decoded: dict[str, np.ndarray] = field(default_factory=dict)


def _load(files: list[Path], seconds: float | None) -> list[_Clip]:
    clips = []
    for path in files:
        wav, sr = read_audio(path)
        if seconds:
            wav = wav[:, : max(1, int(round(seconds * sr)))]
        clips.append(_Clip(path.name, wav, sr))
    return clips


def build_report(files: list[Path], model: Codec, kbps_list: list[float | None], *, opus: bool = False,
                 seconds: float | None = None, max_mb: float = DEFAULT_MAX_MB, command: str = "",
                 model_source: str = "", log: Callable[[str], None] | None = None,
                 beam: int | None = None) -> Report:
    """Build the page for the audio ``files`` at each bitrate in ``kbps_list`` (None: all stages),
    each a file's total over its channels (:mod:`rotcodec.bitrate`); rows are named by the nominal
    bitrate of a mono clip. ``beam``: the encoder's search (None: the model's setting).

    Args:
        opus: also code every clip with Opus at each nominal bitrate (needs opusenc/opusdec; when
            absent the page says why instead).
        seconds: use only the first ``seconds`` of each clip.
        max_mb: refuse, with :class:`ReportTooLarge`, a page over this many MB (10^6 bytes); checked
            once before the work (from the size of the originals) and once on the finished page.
        command: the command line shown in the page; model_source: where the model came from.
        log: called with one line per step (progress), or None.
    """
    start = time.perf_counter()
    say = log or (lambda text: None)
    stages: dict[int, float | None] = {}  # one bitrate per number of stages (fails below one stage)
    for kbps in kbps_list:
        stages.setdefault(stages_for_kbps(model, kbps, 1, warn=False), kbps)
    kbps_list = list(stages.values())
    clips = _load(files, seconds)
    notes = []
    if opus and (reason := opus_missing()):
        notes.append(f"Opus is missing: {reason}.")
        opus = False
    versions = len(kbps_list) * (2 if opus else 1)
    for clip in clips:
        clip.audio["original"] = data_uri("audio/flac", flac_bytes(clip.wav, clip.sample_rate))
    # Decoded audio is about as big as the original once in FLAC: refuse a page that would be far
    # too big before spending minutes on it.
    estimate = sum(len(c.audio["original"]) for c in clips) * (1 + versions)
    if estimate > max_mb * MB:
        raise ReportTooLarge(
            f"the report would embed about {estimate / MB:.2f} MB of audio ({len(clips)} clips x "
            f"{1 + versions} versions), over the {max_mb:g} MB limit; raise --max-mb, or use fewer "
            f"--clips, --kbps or --seconds")

    def keep(i: int, label: str, ref: np.ndarray, est: np.ndarray, sr: int) -> None:
        clips[i].audio[label] = data_uri("audio/flac", flac_bytes(est, sr))
        clips[i].decoded[label] = est
        say(f"{clips[i].name}: {label}")

    pairs = [(c.wav, c.sample_rate) for c in clips]
    ours = evaluate_clips(model, pairs, kbps_list, on_decoded=keep, beam=beam)
    nominal = [nominal_kbps(model, n) for n in stages]  # a mono clip's, in kbps_list's order
    ranked = [((n, 0), s) for n, s in zip(nominal, ours)]
    if opus:
        rates = sorted({max(n, OPUS_MIN_KBPS) for n in nominal})
        low = [f"{n:g}" for n in nominal if n < OPUS_MIN_KBPS]
        if low:
            notes.append(f"Opus codes nothing below {OPUS_MIN_KBPS:g} kbps (opusenc's lowest rate): "
                         f"the rows at {', '.join(low)} kbps are compared with Opus {OPUS_MIN_KBPS:g} kbps.")
        with tempfile.TemporaryDirectory(prefix="rotcodec-opus-") as tmp:
            for rate in rates:
                def roundtrip(wav, sr, rate=rate):
                    return opus_roundtrip(wav, sr, rate, Path(tmp))

                ranked.append(((rate, 1), score_clips(f"Opus {rate:g} kbps", rate, pairs, roundtrip, on_decoded=keep)))
    scores = [s for _, s in sorted(ranked, key=lambda pair: pair[0])]
    say("spectrograms")
    body = "\n".join(_clip_section(k, clip, scores) for k, clip in enumerate(clips))
    page = _page(model, model_source, command, clips, scores, ours, body, notes)
    built = time.perf_counter() - start
    text, size = _with_size(page, built, max_mb)
    if size > max_mb * MB:
        raise ReportTooLarge(f"the report is {size / MB:.2f} MB, over the {max_mb:g} MB limit; raise --max-mb, "
                             f"or use fewer --clips, --kbps or --seconds")
    return Report(text, size, scores, [c.name for c in clips], notes, built)


def _with_size(page: str, built: float, max_mb: float) -> tuple[str, int]:
    """Fill in the page's own size (which the text of the size changes: iterate to a fixed point)."""
    size = len(page.encode("utf-8"))
    for _ in range(5):
        text = page.replace("@@SIZE@@", f"{size / MB:.2f} MB ({size:,} bytes; limit {max_mb:g} MB, --max-mb), "
                                        f"built in {built:.1f} s")
        new = len(text.encode("utf-8"))
        if new == size:
            break
        size = new
    return text, size


# ----- HTML ---------------------------------------------------------------------------------------
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}".replace("-", "−")


def _metrics_line(row: dict) -> str:
    parts = [f"<b>{_num(row['kbps_real'], 2)}</b> kbps real", f"PESQ-WB <b>{_num(row['pesq'], 2)}</b>",
             f"STOI <b>{_num(row['stoi'], 3)}</b>", f"mel <b>{_num(row['mel'], 3)}</b>",
             f"SI-SDR <b>{_num(row['si_sdr'], 1)}</b> dB"]
    return " · ".join(f"<span>{p}</span>" for p in parts)


def _clip_section(k: int, clip: _Clip, scores: list[Score]) -> str:
    seconds = clip.wav.shape[-1] / clip.sample_rate
    rows = {"original": clip.wav, **{s.name: clip.decoded[s.name] for s in scores}}
    pngs, _ = spectrogram_pngs(rows, clip.sample_rate)
    pcm_kbps = clip.sample_rate * 16 * clip.wav.shape[0] / 1000
    info = {"original": f"16-bit PCM: {pcm_kbps:g} kbps"}
    info.update({s.name: _metrics_line(s.per_clip[k]) for s in scores})
    channels = {1: "mono", 2: "stereo"}.get(clip.wav.shape[0], f"{clip.wav.shape[0]} channels")
    out = [f'<section class="clip" id="clip-{k + 1}">',
           f"<h2>{k + 1}. {_esc(clip.name)} <small>{seconds:.2f} s · {clip.sample_rate} Hz · {channels}</small></h2>"]
    for label in rows:
        kind = "opus" if label.startswith("Opus") else "orig" if label == "original" else "ours"
        out.append(
            f'<div class="row {kind}"><div class="side"><div class="label">{_esc(label)}</div>'
            f'<audio controls preload="metadata" title="{_esc(clip.name)}: {_esc(label)}" '
            f'src="{clip.audio[label]}"></audio><div class="m">{info[label]}</div></div>'
            f'<div class="spec"><img src="{data_uri("image/png", pngs[label])}" '
            f'alt="spectrogram of {_esc(clip.name)}: {_esc(label)}"><span class="fmax">'
            f'{clip.sample_rate / 2000:g} kHz</span><span class="fmin">0</span></div></div>')
    out.append(f'<div class="row axis"><div class="side"></div><div class="scale"><span>0 s</span>'
               f'<span>−{DB_RANGE:g} dB <img class="bar" src="{data_uri("image/png", colorbar_png())}" '
               f'alt="colour scale"> 0 dB (the loudest bin in this clip)</span><span>{seconds:.2f} s</span></div></div>')
    out.append("</section>")
    return "\n".join(out)


def _summary(scores: list[Score]) -> str:
    head = ("<tr><th>codec</th><th>real kbps</th><th>PESQ-WB ↑</th><th>STOI ↑</th>"
            "<th>mel distance ↓</th><th>SI-SDR (dB) ↑</th><th>clips</th></tr>")
    rows = [f'<tr class="{"opus" if s.name.startswith("Opus") else "ours"}"><td>{_esc(s.name)}</td>'
            f"<td>{_num(s.kbps_real, 2)}</td><td>{_num(s.pesq, 2)}</td>"
            f"<td>{_num(s.stoi, 3)}</td><td>{_num(s.mel, 3)}</td><td>{_num(s.si_sdr, 1)}</td><td>{s.clips}</td></tr>"
            for s in scores]
    return f'<div class="wide"><table class="summary">{head}{"".join(rows)}</table></div>'


def _usage(ours: list[Score], codebook_size: int) -> str:
    n = max(len(s.usage or []) for s in ours)
    head = "<tr><th>bitrate</th>" + "".join(f"<th>stage {q + 1}</th>" for q in range(n)) + "</tr>"
    rows = []
    for s in ours:
        cells = []
        for u, p, r in zip(s.usage, s.perplexity, s.qerr_rel or [float("nan")] * len(s.usage)):
            cells.append(f'<td><div class="bar" style="width:{u:.1f}%"></div><b>{u:.1f}%</b>'
                         f"<small>ppl {p:.0f} · err {_num(r, 3)}</small></td>")
        cells += ["<td></td>"] * (n - len(s.usage))
        rows.append(f"<tr><td>{_esc(s.name)}</td>{''.join(cells)}</tr>")
    # One column per stage: 12 stages run past a 1200 px page, so the table scrolls in its own box.
    return (f'<div class="wide"><table class="usage">{head}{"".join(rows)}</table></div>'
            f'<p class="note">Per stage, on all clips: % of the '
            f"{codebook_size} codes used, perplexity (ppl, the effective number of codes) and relative "
            "quantization error ||e − q||² / ||e||² (err).</p>")


def _page(model: Codec, model_source: str, command: str, clips: list[_Clip], scores: list[Score],
          ours: list[Score], body: str, notes: list[str]) -> str:
    cfg = model.config
    meta = [
        ("model", f"{cfg.name}" + (f" ({model_source})" if model_source else "")),
        ("weights hash", weights_hash(model)),
        ("model rate", f"{model.sample_rate} Hz, {model.frame_rate:g} frames/s, "
                       f"{counted(cfg.quantizer.n_q, 'stage')} x "
                       f"{cfg.quantizer.codebook_size} codes ({model.bitrate(1) / 1000:g} kbps a stage)"),
        ("rotcodec", f"{rotcodec.__version__} (torch {torch.__version__}, Python {platform.python_version()})"),
        ("command", f"<code>{_esc(command)}</code>" if command else "–"),
        ("built", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("this page", "@@SIZE@@"),
    ]
    meta_html = "".join(f"<tr><th>{k}</th><td>{v if k == 'command' else _esc(v)}</td></tr>" for k, v in meta)
    toc = " · ".join(f'<a href="#clip-{k + 1}">{_esc(c.name)}</a>' for k, c in enumerate(clips))
    note_html = "".join(f'<p class="note warn">{_esc(n)}</p>' for n in dict.fromkeys(notes))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rotcodec {_esc(rotcodec.__version__)}">
<title>rotcodec listening report: {_esc(cfg.name)}</title>
<style>{_CSS}</style></head>
<body>
<h1>rotcodec listening report</h1>
<table class="meta">{meta_html}</table>
{note_html}
<nav>Clips: {toc} · <a href="#summary">summary</a> · <a href="#usage">codebook usage</a></nav>
<p class="note">Each row: a player, the spectrogram (same size and colour scale within a clip) and the clip's
metrics against the original: real bitrate (file bytes over duration), PESQ-WB (1 to 4.6) and STOI (0 to 1),
higher is better; mel distance, lower is better; SI-SDR in dB, higher is better.</p>
{body}
<h2 id="summary">Summary over {counted(len(clips), "clip")}</h2>
{_summary(scores)}
<h2 id="usage">Codebook usage</h2>
{_usage(ours, cfg.quantizer.codebook_size)}
</body></html>
"""


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px 24px;color:#1b1b1f;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:22px 0 6px}h2 small{color:#666;font-weight:normal}
table{border-collapse:collapse}th,td{padding:3px 8px;text-align:left;vertical-align:top}
.meta th{color:#555;font-weight:600;white-space:nowrap}.meta td{word-break:break-all}
code{font:12px ui-monospace,monospace;background:#f3f3f6;padding:1px 4px}
nav{margin:8px 0}.note{color:#555;font-size:13px;margin:4px 0}.warn{color:#9a4a00}
.row{display:grid;grid-template-columns:330px 1fr;gap:12px;align-items:center;padding:3px 0;
  border-top:1px solid #eee}
.row.orig .label{color:#222}.row.ours .label{color:#1f5fbf}.row.opus .label{color:#8a5a00}
.label{font-weight:600}.m{font-size:12px;color:#444}.m span{white-space:nowrap}audio{width:320px;height:32px;display:block}
.spec{position:relative;line-height:0}.spec img{width:100%;height:96px;display:block}
.spec span{position:absolute;left:4px;font-size:10px;line-height:1;color:#fff;text-shadow:0 0 2px #000}
.fmax{top:3px}.fmin{bottom:3px}.row.axis{border:0}
.scale{display:flex;justify-content:space-between;font-size:12px;color:#555;align-items:center}
.scale img.bar{width:160px;height:10px;vertical-align:middle}
.summary td,.summary th,.usage td,.usage th{border-bottom:1px solid #e4e4e8}.summary tr.opus td{color:#6d4700}
.usage td{position:relative;min-width:84px}.usage small{display:block;color:#666;font-size:11px}
.usage .bar{position:absolute;left:0;bottom:0;height:3px;background:#1f5fbf}.usage b{position:relative}
.wide{overflow-x:auto;max-width:100%}
"""
