"""The level the encoder conditions its input to (``conditioning.TARGET_DB``), swept: which level does
a model code best, and what does conditioning gain over coding files as they come?

For each target level every clip is compressed and decompressed through the user's path
(``rotcodec.api``), and once more without conditioning (``condition=False``: the file as it comes).
Each level is compared with coding as it comes clip by clip (paired mean and standard error);
``--json`` keeps the means and those differences:

    python benchmarks/level_sweep.py --data ~/.cache/rotcodec-corpus/unseen16k --data ~/.cache/rotcodec-corpus/unseenx16k \\
        --levels -32,-29,-26,-23,-20 --kbps 3,6 --json docs/level_sweep.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import rotcodec
from rotcodec import api
from rotcodec.coding import conditioning
from rotcodec.evaluate import audio_files, score_clips
from rotcodec.files import atomic_write_text
from rotcodec.io.audio import read_audio

from paired import paired  # benchmarks/paired.py


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", action="append", required=True, help="folders of clips (repeatable)")
    p.add_argument("--model", default=None, help="model file or bundled name (default: the default model)")
    p.add_argument("--levels", default="-32,-29,-26,-23,-20", help="target RMS levels in dBFS")
    p.add_argument("--kbps", default="3,6")
    p.add_argument("--limit", type=int, default=None, help="at most N clips per folder")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    model = rotcodec.load_model(args.model)
    clips = [read_audio(f) for d in args.data for f in audio_files(d, args.limit)]
    levels = [float(x) for x in args.levels.split(",")]
    rows = []
    for kbps in (float(k) for k in args.kbps.split(",")):
        def code(wav, sr, condition=True, kbps=kbps):
            data = api.compress(wav, sr, model, kbps=kbps, condition=condition)
            return api.decompress(data, model)[0].numpy(), len(data)

        raw = score_clips("as it comes", kbps, clips, lambda w, sr: code(w, sr, condition=False))
        rows.append({"kbps": kbps, "level": None, "pesq": raw.pesq, "si_sdr": raw.si_sdr})
        print(f"{kbps:g} kbps, not conditioned: PESQ-WB {raw.pesq:.3f}", flush=True)
        for level in levels:
            conditioning.TARGET_DB = level
            s = score_clips(f"{level:g} dBFS", kbps, clips, code)
            d, se = paired(s.per_clip, raw.per_clip, "pesq")[:2]
            rows.append({"kbps": kbps, "level": level, "pesq": s.pesq, "si_sdr": s.si_sdr,
                         "vs_unconditioned": [d, se]})
            print(f"{kbps:g} kbps, {level:g} dBFS: PESQ-WB {s.pesq:.3f} ({d:+.3f} ± {se:.3f} paired vs not conditioned)",
                  flush=True)
    if args.json:
        atomic_write_text(Path(args.json), json.dumps({"model": args.model or "default", "folders": args.data,
                                                       "clips": len(clips), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
