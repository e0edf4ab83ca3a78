"""`rotcodec report`: the HTML page, its size guard and errors, and the page in a real browser.

The browser test drives Debian's headless Chromium over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages ending in NUL on file descriptors 3 and 4), standard
library only. It skips, saying why, where Chromium is absent (``apt-get install chromium``), and
fails there instead when ``ROTCODEC_REQUIRE_CHROMIUM`` is set (as CI sets it)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rotcodec import Codec, CodecConfig
from rotcodec.cli import main
from rotcodec.report_media import png_indexed, spectrogram_pngs

SR = 16000
KBPS = "0.4,1.6"  # one and four stages of the tiny model
CLIP_SECONDS = 1.5


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal (PESQ finds speech in it) plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 0.5
    return (0.2 * voice * envelope + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    sf.write(folder / "a_voice.wav", _speechlike(CLIP_SECONDS, 0), SR)
    sf.write(folder / "b_voice.flac", _speechlike(CLIP_SECONDS, 1), SR)
    (folder / "notes.txt").write_text("not audio")
    return folder


@pytest.fixture(scope="module")
def report(clips, model_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(clips), str(out), "--model", model_path, "--kbps", KBPS, "-q"]) == 0
    return out


def _audio_srcs(page: str) -> list[str]:
    return re.findall(r'<audio controls[^>]*src="(data:audio/flac;base64,[^"]+)"', page)


def test_page_is_self_contained_with_players_pictures_and_numbers(report, model_path):
    from rotcodec.api import load_model
    from rotcodec.model.loading import weights_hash

    page = report.read_text(encoding="utf-8")
    # nothing fetched from anywhere: every src/href is a data URI or an in-page anchor, no script
    assert "<script" not in page.lower()
    for link in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert link.startswith(("data:", "#")), link[:80]
    # 2 clips x (original + 2 bitrates): players whose FLAC decodes to the clip's length
    srcs = _audio_srcs(page)
    assert len(srcs) == page.count("<audio") == 6
    for src in srcs:
        wav, sr = sf.read(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert sr == SR and len(wav) == int(CLIP_SECONDS * SR)
    # one spectrogram per player, all the same size within the page (same clip length here)
    specs = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="spectrogram of ([^"]+)"', page)
    assert len(specs) == 6
    sizes = {struct.unpack(">II", base64.b64decode(b)[16:24]) for b, _ in specs}
    assert len(sizes) == 1 and min(next(iter(sizes))) > 32
    assert [a for _, a in specs][:3] == ["a_voice.wav: original", "a_voice.wav: rotcodec 0.4 kbps",
                                         "a_voice.wav: rotcodec 1.6 kbps"]
    # provenance and numbers
    assert weights_hash(load_model(model_path)) in page
    assert "rotcodec report" in page and "--kbps 0.4,1.6" in page and "tiny" in page
    assert "Summary over 2 clips" in page and page.count("kbps real") == 4
    summary = page[page.index('id="summary"'):]
    assert "rotcodec 0.4 kbps" in summary and "rotcodec 1.6 kbps" in summary and "stage 4" in summary
    size = re.search(r"([\d.]+) MB \(([\d,]+) bytes", page)
    assert int(size.group(2).replace(",", "")) == report.stat().st_size


def test_size_guard_refuses_and_the_limit_can_be_raised(clips, model_path, tmp_path, capsys):
    out = tmp_path / "r.html"
    args = ["report", str(clips), str(out), "--model", model_path, "--kbps", "1.6", "-q"]
    assert main(args + ["--max-mb", "0.05"]) == 1  # refused before any decoding, from the originals
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over the 0.05 MB limit" in err and "--max-mb" in err
    assert main(args + ["--max-mb", "0.2"]) == 1  # passes the estimate, refused on the finished page
    assert "the report is 0." in capsys.readouterr().err and not out.exists()
    assert main(args + ["--max-mb", "2"]) == 0 and out.stat().st_size > 0.2e6


def test_never_overwrites_without_force_and_bad_input_is_one_line(clips, model_path, tmp_path, capsys):
    out = tmp_path / "r.html"
    out.write_text("mine")
    base = ["--model", model_path, "--kbps", "1.6", "-q"]
    assert main(["report", str(clips), str(out)] + base) == 1
    assert "already exists" in capsys.readouterr().err and out.read_text() == "mine"
    for argv, message in [
        ([str(tmp_path / "nope"), str(tmp_path / "x.html")], "no such file or folder"),
        ([str(clips), str(tmp_path / "x.wav")], "must end in .html"),
        ([str(clips / "notes.txt"), str(tmp_path / "x.html")], "notes.txt"),
        ([str(clips), str(tmp_path / "x.html"), "--kbps", "0.1"], "kbps"),
        ([str(clips), str(tmp_path / "x.html"), "--clips", "0"], "must be positive"),
    ]:
        assert main(["report"] + argv[:2] + base + argv[2:]) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("rotcodec: error:") and message in err, err
    assert not (tmp_path / "x.html").exists()
    assert main(["report", str(clips / "a_voice.wav"), str(out), "--force", "--seconds", "0.5"] + base) == 0
    page = out.read_text()
    assert len(_audio_srcs(page)) == 2 and "0.50 s" in page and "Summary over 1 clip<" in page


def test_opus_beside_each_bitrate_or_a_note_why_not(clips, model_path, tmp_path, monkeypatch):
    out = tmp_path / "o.html"
    args = ["report", str(clips), str(out), "--model", model_path, "--kbps", "1.6,1.7", "--clips", "1", "--opus", "-q"]
    if shutil.which("opusenc") and shutil.which("opusdec"):
        assert main(args) == 0
        page = out.read_text()
        assert len(_audio_srcs(page)) == 3 and "Opus 6 kbps" in page and "compared with Opus 6 kbps" in page
        assert page.index("rotcodec 1.6 kbps</div>") < page.index("Opus 6 kbps</div>")
    monkeypatch.setenv("PATH", str(tmp_path))  # no opus-tools here
    assert main(args + ["--force"]) == 0
    page = out.read_text()
    assert "Opus is missing: opusenc and opusdec not found" in page and "Opus 6" not in page
    assert len(_audio_srcs(page)) == 2  # 1.6 and 1.7 kbps are both all four stages: one decoding


def test_a_very_short_stereo_clip_at_another_rate(model_path, tmp_path):
    t = np.arange(2000) / 48000  # 42 ms: shorter than half the largest mel window at 48 kHz
    wav = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1) * 0.3
    sf.write(tmp_path / "tiny_stereo.wav", wav, 48000)
    out = tmp_path / "s.html"
    # --kbps is the file's total: 0.8 kbps is 1 stage on each of the 2 channels
    assert main(["report", str(tmp_path / "tiny_stereo.wav"), str(out), "--model", model_path, "--kbps", "0.8", "-q"]) == 0
    page = out.read_text()
    assert "48000 Hz · stereo" in page and "PESQ-WB <b>–</b>" in page  # too short to score: a dash, not a crash
    decoded = sf.read(io.BytesIO(base64.b64decode(_audio_srcs(page)[1].split(",", 1)[1])))
    assert decoded[1] == 48000 and decoded[0].shape == (2000, 2)


def test_spectrogram_pngs_share_one_scale():
    t = np.arange(SR) / SR
    loud = np.sin(2 * np.pi * 1000 * t)[None].astype(np.float32)
    pngs, top = spectrogram_pngs({"loud": loud, "quiet": loud * 0.01}, SR, width=100, height=40)
    assert pngs["loud"][:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", pngs["loud"][16:24]) == (100, 40)
    assert pngs["loud"] != pngs["quiet"]  # 40 dB quieter is darker on the shared scale
    with pytest.raises(ValueError):
        png_indexed(np.zeros(3, np.uint8), np.zeros((256, 3), np.uint8))


# ----- a real browser ------------------------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe."""

    def __init__(self, exe: str, profile: Path, timeout: float = 60.0):
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()

        def fds():  # the browser reads commands on fd 3 and writes replies on fd 4
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio", "--no-first-run",
             "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.timeout, self._id, self._buf, self.events = timeout, 0, b"", []
        self.session = None

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._next())

    def _next(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit {self.proc.poll()})")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, width: int, height: int) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"]["value"]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


# For every <audio>: its duration once the browser has loaded it, and the duration of its source
# decoded in full by Web Audio; for every <img>: its decoded width.
_CHECK_PAGE = """(async () => {
  const audios = [...document.querySelectorAll('audio')];
  const loaded = await Promise.all(audios.map(a => new Promise(done => {
    if (a.readyState >= 1) return done(a.duration);
    a.addEventListener('loadedmetadata', () => done(a.duration));
    a.addEventListener('error', () => done(-1));
    a.load();
  })));
  const decoded = [];
  for (const a of audios) {
    const bytes = await (await fetch(a.currentSrc || a.src)).arrayBuffer();
    try {
      const buf = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(bytes);
      decoded.push(buf.duration);
    } catch (e) { decoded.push(-1); }
  }
  const images = [...document.images].map(i => (i.complete ? i.naturalWidth : 0));
  return {loaded, decoded, images, labels: [...document.querySelectorAll('.row .label')].map(l => l.textContent),
          title: document.title};
})()"""


# How wide the page is against the window, and the codebook-usage table against its box.
_WIDTHS = """(() => {
  const box = document.querySelector('table.usage').parentElement;
  return {page: document.documentElement.scrollWidth, window: window.innerWidth,
          table: box.scrollWidth, box: box.clientWidth};
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = _chromium()
    if exe is None:
        if os.environ.get("ROTCODEC_REQUIRE_CHROMIUM"):  # set by .ci/run: CI must run this test
            pytest.fail("ROTCODEC_REQUIRE_CHROMIUM is set but no Chromium is on the PATH")
        pytest.skip("Chromium not found: apt-get install chromium (Debian) to run the browser test")
    return exe


@pytest.fixture(scope="module")
def wide_report(chromium, clips, tmp_path_factory) -> Path:
    """The report of a 16-stage model: its codebook-usage table (a column per stage, as the bundled
    model's 12 at 1200 px) is wider than a 1280 px window."""
    folder = tmp_path_factory.mktemp("wide")
    config = CodecConfig.preset("tiny")
    torch.manual_seed(0)
    model = Codec(dataclasses.replace(config, quantizer=dataclasses.replace(config.quantizer, n_q=16)))
    model.train()
    model(torch.randn(4, 1, 8000) * 0.1)
    model.eval().save(folder / "wide.pt")
    out = folder / "wide.html"
    assert main(["report", str(clips / "a_voice.wav"), str(out), "--model", str(folder / "wide.pt"),
                 "--kbps", "all", "--seconds", "0.5", "-q"]) == 0
    return out


def test_report_in_headless_chromium(chromium, report, wide_report, tmp_path):
    browser = DevTools(chromium, tmp_path / "profile")
    try:
        browser.open(report.resolve().as_uri(), 1280, 1400)
        state = browser.evaluate(_CHECK_PAGE)
        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
        widths = browser.evaluate(_WIDTHS)
        browser.open(wide_report.resolve().as_uri(), 1280, 1400)
        wide = browser.evaluate(_WIDTHS)
    finally:
        browser.close()
    (tmp_path / "report.png").write_bytes(shot)
    assert state["title"].startswith("rotcodec listening report")
    assert len(state["loaded"]) == 6 and state["labels"][:3] == ["original", "rotcodec 0.4 kbps", "rotcodec 1.6 kbps"]
    for duration in state["loaded"] + state["decoded"]:
        assert duration == pytest.approx(CLIP_SECONDS, abs=0.05)
    # 6 spectrograms + 2 colour bars, all decoded
    assert len(state["images"]) == 8 and min(state["images"]) > 0
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", shot[16:24]) == (1280, 1400)
    assert len(shot) > 20_000  # a blank page compresses to a few kB
    # Nothing makes the page wider than the window: a table too wide scrolls in its own box.
    assert widths["page"] <= widths["window"] == 1280, widths
    assert wide["table"] > wide["box"] and wide["page"] <= wide["window"] == 1280, wide
