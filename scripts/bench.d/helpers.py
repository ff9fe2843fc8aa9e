#!/usr/bin/env python3
"""Small helpers for scripts/bench (timing, medians, peak RSS, the report).

    helpers.py time [--out FILE] -- CMD ARGS...   run CMD once, print wall seconds
    helpers.py maxrss -- CMD ARGS...              run CMD once, print peak RSS in KiB
    helpers.py median X...                        print the median
    helpers.py report ROWS.tsv INFO.tsv RUNS.tsv TXT MD

`time` sends CMD's stdout to FILE (default /dev/null) and its stderr to ours;
it exits with CMD's status. Only the child's lifetime is timed (perf_counter
around fork/exec/wait), so Python's own start-up is not counted.
"""
import os
import resource
import statistics
import subprocess
import sys


def _split(argv):
    if "--" not in argv:
        sys.exit("helpers.py: expected -- before the command")
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


def cmd_time(argv):
    opts, cmd = _split(argv)
    out = "/dev/null"
    if opts[:1] == ["--out"]:
        out = opts[1]
    import time
    with open(out, "wb") as f:
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, stdout=f)
        dt = time.perf_counter() - t0
    if rc != 0:
        print(f"helpers.py: command failed (exit {rc}): {' '.join(cmd)}", file=sys.stderr)
        sys.exit(rc if rc > 0 else 1)
    print(f"{dt:.6f}")


def cmd_maxrss(argv):
    _, cmd = _split(argv)
    rc = subprocess.call(cmd, stdout=subprocess.DEVNULL)
    if rc != 0:
        print(f"helpers.py: command failed (exit {rc}): {' '.join(cmd)}", file=sys.stderr)
        sys.exit(rc if rc > 0 else 1)
    # Linux reports ru_maxrss in KiB (the largest child that was waited for).
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def cmd_median(argv):
    xs = [float(x) for x in argv]
    print(f"{statistics.median(xs):.6f}")


def _read_tsv(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    rows.append(line.split("\t"))
    return rows


def _text_table(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    def fmt(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), sep] + [fmt(r) for r in rows])


def _md_table(header, rows):
    def esc(c):
        return c.replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def cmd_report(argv):
    rows_p, info_p, runs_p, txt_p, md_p = argv
    header = ["metric", "kiln", "baseline", "ratio", "target", "result"]
    rows = [r + [""] * (len(header) - len(r)) for r in _read_tsv(rows_p)]
    info = _read_tsv(info_p)
    runs = _read_tsv(runs_p)

    title = next((v for k, v in info if k == "title"), "kiln benchmark")
    info = [(k, v) for k, v in info if k != "title"]
    n_fail = sum(1 for r in rows if r[5] == "FAIL")
    n_pass = sum(1 for r in rows if r[5] == "pass")
    summary = f"{n_pass} pass, {n_fail} fail"

    txt = [title, "", _text_table(header, rows) if rows else "(no results)", "", summary, ""]
    if runs:
        txt += ["Per-run times (s):", _text_table(["measurement", "runs", "median"], runs), ""]
    txt += ["Machine and tools:"]
    kw = max((len(k) for k, _ in info), default=0)
    txt += [f"  {k.ljust(kw)}  {v}" for k, v in info]

    md = [f"# {title}", "", _md_table(header, rows) if rows else "(no results)", "", f"**{summary}**", ""]
    if runs:
        md += ["## Per-run times (s)", "", _md_table(["measurement", "runs", "median"], runs), ""]
    md += ["## Machine and tools", "", _md_table(["", ""], [list(r) for r in info]), ""]

    with open(txt_p, "w") as f:
        f.write("\n".join(txt) + "\n")
    with open(md_p, "w") as f:
        f.write("\n".join(md) + "\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, argv = sys.argv[1], sys.argv[2:]
    {"time": cmd_time, "maxrss": cmd_maxrss, "median": cmd_median, "report": cmd_report}.get(
        cmd, lambda _: sys.exit(__doc__))(argv)


if __name__ == "__main__":
    main()
