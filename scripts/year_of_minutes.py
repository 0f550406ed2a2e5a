"""Writes one year of 1-minute candles (525,600) for the backtest benchmark: the bundled 21-day
Binance.US minute sample repeated end to end, prices rescaled at each seam so the series stays
continuous (a benchmark input, not market data: never use it for research)."""

import csv
import gzip
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
N = 365 * 1440


def main(out):
    with gzip.open(ROOT / "data" / "BTCUSDT-1m.csv.gz", "rt") as f:
        rows = [tuple(map(float, r[1:])) for r in list(csv.reader(f))[1:]]
    t = 1_577_836_800_000  # 2020-01-01 00:00 UTC
    scale = 1.0
    written = 0
    with gzip.open(out, "wt", compresslevel=1) as f:
        f.write("open_time,open,high,low,close,volume\n")
        while written < N:
            for o, h, l, c, v in rows:
                if written == N:
                    break
                f.write(f"{t},{o * scale:.2f},{h * scale:.2f},{l * scale:.2f},{c * scale:.2f},{v}\n")
                t += 60_000
                written += 1
            scale *= rows[0][0] / rows[-1][3]


if __name__ == "__main__":
    main(sys.argv[1])
