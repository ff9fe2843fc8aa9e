#!/usr/bin/env python3
"""Small helpers for scripts/bench (timing, medians, peak RSS, the report).

    helpers.py time [--out FILE] -- CMD ARGS...   run CMD once, print "WALL CPU OTHER"
    helpers.py maxrss -- CMD ARGS...              run CMD once, print peak RSS in KiB
    helpers.py quiet MAX_S BUSY                   wait (at most MAX_S) until the machine is idle
    helpers.py median X...                        print the median
    helpers.py summary FILE                       lines of "WALL CPU OTHER" -> TSV of
                                                  walls, median wall, median CPU, median OTHER
    helpers.py report ROWS.tsv INFO.tsv RUNS.tsv TXT MD

`time` sends CMD's stdout to FILE (default /dev/null) and its stderr to ours;
it exits with CMD's status. WALL is the child's lifetime in seconds
(perf_counter around fork/exec/wait, so Python's own start-up is not counted),
CPU its user+system seconds, OTHER the CPU seconds the rest of the machine used
meanwhile (from /proc/stat), divided by WALL: how many cores others took.

`quiet` samples /proc/stat for 0.5 s at a time until at most BUSY (a fraction
of all cores) is in use, or MAX_S seconds have passed; prints the seconds
waited and the last busy fraction.
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


def _cpu_jiffies():
    """(busy, total) jiffies over all CPUs from /proc/stat, or None."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]:
    # guest time is already counted in user/nice.
    vals = vals[:8]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def cmd_time(argv):
    import time
    opts, cmd = _split(argv)
    out = "/dev/null"
    if opts[:1] == ["--out"]:
        out = opts[1]
    hz = os.sysconf("SC_CLK_TCK")
    with open(out, "wb") as f:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        j0 = _cpu_jiffies()
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, stdout=f)
        dt = time.perf_counter() - t0
        j1 = _cpu_jiffies()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        print(f"helpers.py: command failed (exit {rc}): {' '.join(cmd)}", file=sys.stderr)
        sys.exit(rc if rc > 0 else 1)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    other = 0.0
    if j0 and j1 and dt > 0:
        other = max(0.0, (j1[0] - j0[0]) / hz - cpu) / dt
    print(f"{dt:.6f} {cpu:.3f} {other:.2f}")


def cmd_quiet(argv):
    import time
    max_s, busy_max = float(argv[0]), float(argv[1])
    t0 = time.monotonic()
    busy = 0.0
    while True:
        a = _cpu_jiffies()
        time.sleep(0.5)
        b = _cpu_jiffies()
        if not a or not b or b[1] == a[1]:
            break
        busy = (b[0] - a[0]) / (b[1] - a[1])
        if busy <= busy_max or time.monotonic() - t0 >= max_s:
            break
        time.sleep(1.0)
    print(f"{time.monotonic() - t0:.1f} {busy:.2f}")


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


def cmd_summary(argv):
    rows = [l.split() for l in open(argv[0]) if l.strip()]
    med = lambda i: statistics.median(float(r[i]) for r in rows)
    walls = " ".join(f"{float(r[0]):.3f}" for r in rows)
    print(f"{walls}\t{med(0):.3f}\t{med(1):.2f}\t{med(2):.2f}")


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


RUN_HEADER = ["measurement", "wall per run", "median", "CPU", "others"]


def cmd_report(argv):
    rows_p, info_p, runs_p, txt_p, md_p = argv
    header = ["metric", "kiln", "baseline", "ratio", "target", "result"]
    rows = [r + [""] * (len(header) - len(r)) for r in _read_tsv(rows_p)]
    info = _read_tsv(info_p)
    runs = [r + [""] * (len(RUN_HEADER) - len(r)) for r in _read_tsv(runs_p)]

    title = next((v for k, v in info if k == "title"), "kiln benchmark")
    info = [(k, v) for k, v in info if k != "title"]
    n_fail = sum(1 for r in rows if r[5] == "FAIL")
    n_pass = sum(1 for r in rows if r[5] == "pass")
    summary = f"{n_pass} pass, {n_fail} fail"
    busy = max((float(r[4]) for r in runs if len(r) > 4 and r[4]), default=0.0)
    if busy > 0.25:
        summary += (f"; WARNING: other processes used up to {busy:.2f} cores (median per"
                    " measurement) during timed runs, so these numbers are noisy")

    txt = [title, "", _text_table(header, rows) if rows else "(no results)", "", summary, ""]
    if runs:
        txt += ["Per-run wall times (s); CPU = median user+sys s; others = median cores used by other processes:",
                _text_table(RUN_HEADER, runs), ""]
    txt += ["Machine and tools:"]
    kw = max((len(k) for k, _ in info), default=0)
    txt += [f"  {k.ljust(kw)}  {v}" for k, v in info]

    md = [f"# {title}", "", _md_table(header, rows) if rows else "(no results)", "", f"**{summary}**", ""]
    if runs:
        md += ["## Per-run times", "", "Wall times in seconds; CPU = median user+sys seconds;"
               " others = median cores used by other processes meanwhile.", "",
               _md_table(RUN_HEADER, runs), ""]
    md += ["## Machine and tools", "", _md_table(["", ""], [list(r) for r in info]), ""]

    with open(txt_p, "w") as f:
        f.write("\n".join(txt) + "\n")
    with open(md_p, "w") as f:
        f.write("\n".join(md) + "\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, argv = sys.argv[1], sys.argv[2:]
    {"time": cmd_time, "maxrss": cmd_maxrss, "quiet": cmd_quiet, "summary": cmd_summary, "median": cmd_median, "report": cmd_report}.get(
        cmd, lambda _: sys.exit(__doc__))(argv)


if __name__ == "__main__":
    main()
