"""The curve of all training rounds, as the rounds were judged: ``docs/training_log.csv``.

Each row of the training log (written by ``training_round.py``) is one round's `rotcodec eval` on
``speech16k/valid``: PESQ-WB, STOI and SI-SDR at 1.5, 3 and 6 kbps, the hours of audio the weights
had seen, whether it shipped. This reads the rows back and draws PESQ-WB and SI-SDR against hours
seen (log scale), shipped rounds filled, unshipped hollow, with Opus's scores on the same clips as
dashed lines when given (``opus_compare.py --json``):

    python benchmarks/rounds.py --opus runs/opus/speech16k_valid.json --plot docs/rounds.png
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "docs" / "training_log.csv"
KBPS = (1.5, 3.0, 6.0)
COLUMNS = ("round", "steps", "hours_seen", *(f"{m}_{k:g}" for m in ("pesq", "stoi", "si_sdr") for k in KBPS), "shipped")


@dataclass(frozen=True)
class Round:
    number: int
    steps: int
    hours: float
    pesq: tuple[float, float, float]  # at 1.5, 3, 6 kbps
    stoi: tuple[float, float, float]
    si_sdr: tuple[float, float, float]
    shipped: bool


def parse_training_log(text: str) -> list[Round]:
    """The rows of the training log's CSV ``text``, by round. A round written twice (a partial round
    finished later) keeps its last row. ValueError when a column is missing, a row does not parse, or
    there are no rows."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"the training log lacks the columns {missing}")
    rounds: dict[int, Round] = {}
    for line, r in enumerate(reader, start=2):
        try:
            number = int(r["round"])
            rounds[number] = Round(number, int(r["steps"]), float(r["hours_seen"]),
                                   *(tuple(float(r[f"{m}_{k:g}"]) for k in KBPS) for m in ("pesq", "stoi", "si_sdr")),
                                   r["shipped"].strip().lower() == "yes")
        except (TypeError, ValueError) as err:
            raise ValueError(f"training log line {line}: {err}") from None
    if not rounds:
        raise ValueError("the training log has no rows")
    return [rounds[k] for k in sorted(rounds)]


def opus_scores(path: str | Path) -> dict[float, dict]:
    """``{kbps: score dict}`` from ``opus_compare.py --json``."""
    return {float(s["kbps_nominal"]): s for s in json.loads(Path(path).read_text())}


def markdown(rounds: list[Round]) -> str:
    lines = ["| round | hours seen | PESQ-WB 1.5 / 3 / 6 kbps | SI-SDR dB 1.5 / 3 / 6 kbps | shipped |",
             "|---|---|---|---|---|"]
    for r in rounds:
        lines.append(f"| {r.number} | {r.hours:.1f} | {' / '.join(f'{x:.2f}' for x in r.pesq)} | "
                     f"{' / '.join(f'{x:.1f}' for x in r.si_sdr)} | {'yes' if r.shipped else 'no'} |")
    return "\n".join(lines)


def plot(rounds: list[Round], path: str | Path, opus: dict[float, dict] | None = None) -> Path:
    from rotcodec.plots import pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    colors = dict(zip(KBPS, ("tab:blue", "tab:orange", "tab:green")))
    hours = [r.hours for r in rounds]
    ticks = [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if min(hours) / 1.5 <= t <= max(hours) * 1.5]
    for ax, metric, label in ((axes[0], "pesq", "PESQ-WB"), (axes[1], "si_sdr", "SI-SDR (dB)")):
        for i, kbps in enumerate(KBPS):
            values = [getattr(r, metric)[i] for r in rounds]
            ax.plot(hours, values, color=colors[kbps], lw=1, label=f"rotcodec {kbps:g} kbps")
            for r, h, v in zip(rounds, hours, values):
                ax.plot([h], [v], "o", color=colors[kbps], mfc=colors[kbps] if r.shipped else "white", ms=5)
        for kbps, style in ((6.0, "--"), (8.0, ":")):
            if opus and kbps in opus:
                ax.axhline(opus[kbps][metric], color="grey", ls=style, lw=1, label=f"Opus {kbps:g} kbps")
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("hours of audio seen (all rounds)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("stft16k-cpu, speech16k/valid, round by round (filled: shipped)", fontsize=10)
    return save(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--log", default=str(LOG), help="training log CSV (default: docs/training_log.csv)")
    p.add_argument("--opus", default=None, metavar="JSON", help="opus_compare.py --json output: reference lines")
    p.add_argument("--plot", default=None, metavar="PNG", help="also draw the figure")
    args = p.parse_args(argv)
    rounds = parse_training_log(Path(args.log).read_text(encoding="utf-8"))
    print(markdown(rounds))
    if args.plot:
        print(f"\nplot: {plot(rounds, args.plot, opus_scores(args.opus) if args.opus else None)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
