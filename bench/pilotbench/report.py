"""Markdown report and phase chart from a bench results document.

Ratios are ours / reference computed pair by pair (run i of ours against run i of the reference, both
in the same bench run), then summarised as median [min-max]; "best" is, per run, the better of the
two references. Targets are judged on the median of the ours/best ratios.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any, Callable, Optional

from . import REPO
from . import stageout
from .scenarios import LARGE, SCENARIOS, SMALL

PHASES = ("getjob", "stagein", "payload", "stageout", "final", "exit")
PHASE_LABELS = {"getjob": "start to getJob", "stagein": "stage-in + setup", "payload": "payload",
                "stageout": "stage-out", "final": "final update", "exit": "exit"}
LABELS = {"pilot2": "Pilot 2", "pilot3": "Pilot 3", "ours": "ours", "ours-link": "ours, mv symlink mode"}
REFS = ("pilot2", "pilot3")


def machine_info() -> dict:
    """CPU model, cores, memory, kernel, Python, and the checkout's commit."""
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as handle:
            mem_gb = round(int(handle.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        mem_gb = 0.0
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "pilot"], capture_output=True,
                           text=True).stdout.strip()
    return {"cores": os.cpu_count(), "cpu": model, "arch": platform.machine(), "kernel": platform.release(),
            "mem_gb": mem_gb, "python": platform.python_version(),
            "commit": commit + ("+local changes" if dirty else "")}


def merge_documents(documents: list) -> dict:
    """One report from a bench run done in parts (``--report-only A.json B.json``): a later part's scenarios
    replace the earlier parts' results for the same scenarios. Parts must come from the same machine kind
    and reference pilots; each keeps its commit and times under ``parts``."""
    if len(documents) == 1:
        return documents[0]
    first = documents[0]
    keys = ("cores", "cpu", "arch", "python")
    for other in documents[1:]:
        if any(other["machine"].get(k) != first["machine"].get(k) for k in keys) or \
                other["install"].get("python39_version") != first["install"].get("python39_version"):
            raise ValueError("the parts were measured on different machines or interpreters: not merged")
    merged = dict(first, results=[], scenarios=[], parts=[])
    for document in documents:
        redone = set(document["scenarios"])
        merged["results"] = [r for r in merged["results"] if r["scenario"] not in redone] + document["results"]
        merged["scenarios"] = [k for k in merged["scenarios"] if k not in redone] + document["scenarios"]
        ran = [k for k in document["scenarios"] if any(r["scenario"] == k for r in document["results"])]
        merged["parts"].append({"started": document["started"], "finished": document.get("finished"),
                                "commit": document["machine"]["commit"], "scenarios": ran})
    merged["started"] = min(d["started"] for d in documents)
    merged["finished"] = max(d.get("finished", d["started"]) for d in documents)
    merged["runs"] = max(d["runs"] for d in documents)
    merged["runs_long"] = max(d["runs_long"] for d in documents)
    return merged


def _commits(document: dict) -> str:
    """"commit X", or for a report merged from parts "commits X, Y (by part, below)"."""
    parts = document.get("parts")
    if not parts:
        return f"commit {document['machine']['commit']}"
    return f"commits {', '.join(dict.fromkeys(p['commit'] for p in parts))} (by part, below)"


def _parts_line(document: dict) -> str:
    """How a merged report was put together, part by part."""
    parts = document.get("parts")
    if not parts:
        return ""
    described = []
    for part in parts:
        start = datetime.datetime.fromtimestamp(part["started"])
        took = f"{(part['finished'] - part['started']) / 60:.0f} min" if part["finished"] else "interrupted"
        described.append(f"{', '.join(part['scenarios'])} at commit {part['commit']} ({start:%H:%M}, {took})")
    return (f" Run in {len(parts)} parts on the same machine, a later part's scenarios replacing the earlier "
            f"ones': {'; '.join(described)}.")


# ----------------------------------------------------------------------------- numbers

def _runs(results: list, scenario: str, pilot: str) -> dict:
    """run index -> result of one pilot in one scenario."""
    return {r["run"]: r for r in results if r["scenario"] == scenario and r["pilot"] == pilot}


def _get(result: dict, path: str) -> Optional[float]:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            return None
        value = value[part]
    return float(value)


def _sent(result: dict, kinds: tuple) -> Optional[float]:
    """Request body bytes of some kinds of request (panda, info, traces); None when the run did not record them.

    Runs from before the split (2026-12-07) have only the total: it is all of one kind when no trace was sent.
    """
    http = result.get("http")
    if not isinstance(http, dict):
        return None
    by_kind = http.get("bytes_in_by_kind")
    if isinstance(by_kind, dict):
        return float(sum(by_kind.get(k) or 0 for k in kinds))
    if not http.get("traces"):
        return float(http.get("bytes_in") or 0) if "traces" not in kinds else 0.0
    return None


def _values(runs: dict, metric: Callable[[dict], Optional[float]]) -> dict:
    return {i: v for i, r in runs.items() if (v := metric(r)) is not None}


def _fmt(value: Optional[float], unit: str = "") -> str:
    if value is None:
        return "n/a"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 0.1 else 3
    return f"{value:.{digits}f}{unit}"


def _summary(values: list, unit: str = "") -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return _fmt(med, unit)
    return f"{_fmt(med, unit)} [{_fmt(min(values))}–{_fmt(max(values))}]"


def _ratio(ours: dict, ref: dict, higher_better: bool = False) -> list:
    out = []
    for i, value in ours.items():
        if i in ref and ref[i]:
            out.append(value / ref[i])
    return out


def _best(refs: list, higher_better: bool) -> dict:
    """Per run index, the better of the references' values."""
    pick = max if higher_better else min
    common = set.intersection(*(set(r) for r in refs)) if refs else set()
    return {i: pick(r[i] for r in refs) for i in common}


class Table:
    """A metric table for one scenario: medians, ranges and pairwise ratios."""

    def __init__(self, results: list, scenario: str, ours: str = "ours") -> None:
        self.results = results
        self.scenario = scenario
        self.ours = ours
        self.rows: list[str] = []
        self.ratios: dict[str, list] = {}

    def add(self, name: str, metric: Callable[[dict], Optional[float]], unit: str = "",
            higher_better: bool = False, pilots: tuple = ("pilot2", "pilot3", "ours")) -> None:
        vals = {p: _values(_runs(self.results, self.scenario, p), metric) for p in pilots}
        cells = [_summary(list(vals[p].values()), unit) for p in pilots]
        ours = vals[self.ours]
        refs = [vals[p] for p in REFS if p in vals and vals[p]]
        best = _best(refs, higher_better)
        ratio_cells = [_summary(_ratio(ours, vals[p])) if p in vals else "n/a" for p in REFS]
        best_ratio = _ratio(ours, best)
        self.ratios[name] = best_ratio
        self.rows.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(ratio_cells) +
                         f" | {_summary(best_ratio)} |")

    def markdown(self, pilots: tuple = ("pilot2", "pilot3", "ours")) -> str:
        head = "| metric | " + " | ".join(LABELS[p] for p in pilots) + \
               " | ours / Pilot 2 | ours / Pilot 3 | ours / best ref |"
        return "\n".join([head, "|" + "---|" * (len(pilots) + 4), *self.rows])


def _median(results: list, scenario: str, pilot: str, metric: Callable[[dict], Optional[float]]) -> Optional[float]:
    vals = list(_values(_runs(results, scenario, pilot), metric).values())
    return statistics.median(vals) if vals else None


def _stagein_overheads(results: list, scenario: str, pilot: str, plain: Optional[str] = None) -> dict:
    """Per run: (getJob → last input in place with N inputs − the same with one input) / (N − 1), minus the
    raw copy time per file when the pilot copies (``plain_copy``: ``cp`` for ours in c, where the references
    and the symlink mode move no bytes; in x the plain ``xrdcp`` for every pilot, by default with the
    ``--cksum adler32:print`` all three pilots' tools use (``plain_copy_cksum``; documents from before it was
    measured have the bare copy only))."""
    if scenario.startswith("x-"):
        base_key = "x-base"
        if plain is None:
            checked = any("plain_copy_cksum" in r for r in results if r["scenario"] == scenario)
            plain = "plain_copy_cksum" if checked else "plain_copy"
    else:
        base_key = "a" if _runs(results, "a", pilot) else "c-base"
        plain = plain or "plain_copy"
    base = _median(results, base_key, pilot, lambda r: r.get("getjob_to_last_input"))
    if base is None:
        return {}
    # x: the plain copy of the one-input set (the script alone) is measured too, so the raw cost of the extra
    # files is the difference, as for the pilot; c: cp's time spread over all files
    plain_base = _median(results, base_key, pilot, lambda r: r.get(plain)) if base_key == "x-base" else None
    out = {}
    for i, r in _runs(results, scenario, pilot).items():
        if r.get("getjob_to_last_input") is None:
            continue
        extra = r["inputs"] - 1
        if plain_base is not None and r.get(plain) is not None:
            raw = (r[plain] - plain_base) / extra
        else:
            raw = (r.get(plain) or 0.0) / r["inputs"]
        out[i] = (r["getjob_to_last_input"] - base) / extra - raw
    return out


# ----------------------------------------------------------------------------- report

def _scenario_a(results: list) -> tuple[str, dict]:
    t = Table(results, "a")
    t.add("start → payload start (s)", lambda r: r.get("start_to_payload"))
    t.add("payload end → exit (s)", lambda r: r.get("payload_end_to_exit"))
    t.add("total wall (s)", lambda r: r.get("wall"))
    t.add("pilot-only CPU (s)", lambda r: r.get("cpu_pilot"))
    t.add("peak RSS, pilot process (MB)", lambda r: r.get("peak_rss_mb"))
    t.add("peak RSS, all pilot processes (MB)", lambda r: r.get("peak_tree_rss_mb"))
    t.add("max threads", lambda r: r.get("max_threads"))
    t.add("HTTP requests: PanDA server + queue/storage data", lambda r: _get(r, "http.panda") + _get(r, "http.info"))
    t.add("HTTP requests: Rucio traces", lambda r: _get(r, "http.traces"))
    t.add("HTTP requests, all", lambda r: _get(r, "http.total"))
    t.add("HTTP bytes sent (bodies)", lambda r: _get(r, "http.bytes_in"))
    t.add("HTTP bytes sent: PanDA server + queue/storage data", lambda r: _sent(r, ("panda", "info")))
    t.add("HTTP bytes sent: Rucio traces", lambda r: _sent(r, ("traces",)))
    t.add("HTTP bytes received (bodies)", lambda r: _get(r, "http.bytes_out"))
    for phase in PHASES:
        t.add(f"phase: {PHASE_LABELS[phase]} (s)", lambda r, p=phase: _get(r, f"phases.{p}"))
    return t.markdown(), t.ratios


def _scenario_b(results: list) -> str:
    t = Table(results, "b")
    t.add("pilot CPU while the payload runs (s per minute)", lambda r: _get(r, "window.cpu_per_min"))
    t.add("RSS of pilot processes while it runs, median (MB)", lambda r: _get(r, "window.rss_median_mb"))
    t.add("threads while it runs", lambda r: _get(r, "window.threads_median"))
    t.add("updateJob calls during the payload", lambda r: r.get("heartbeats_during_payload"))
    t.add("updateJob calls in all", lambda r: r.get("updates"))
    t.add("pilot-only CPU, whole run (s)", lambda r: r.get("cpu_pilot"))
    t.add("total wall (s)", lambda r: r.get("wall"))
    return t.markdown()


def _per_pilot(results: list, key: str, pilots: tuple, name: str, scale: float) -> dict:
    """pilot -> run -> value of one field (scaled)."""
    return {p: _values(_runs(results, key, p), lambda r: None if r.get(name) is None else scale * r[name])
            for p in pilots}


def _scenario_c(results: list) -> tuple[str, dict]:
    pilots = ("pilot2", "pilot3", "ours", "ours-link")
    lines = ["| metric | " + " | ".join(LABELS[p] for p in pilots) +
             " | ours / best ref | ours (symlink) / best ref |", "|" + "---|" * 7]
    ratios: dict = {}
    for key, label in (("c-small", f"{SMALL[0]} × {SMALL[1] // 1024} kB"),
                       ("c-large", f"{LARGE[0]} × {LARGE[1] // 2 ** 20} MB")):
        if not any(r["scenario"] == key for r in results):
            continue

        def metric_of(name: str, scale: float = 1.0) -> dict:
            return _per_pilot(results, key, pilots, name, scale)

        over = {p: {i: 1000 * v for i, v in _stagein_overheads(results, key, p).items()} for p in pilots}
        copy = _values(_runs(results, key, "ours"), lambda r: r.get("plain_copy"))
        rows = [(f"{label}: getJob → payload start (s)", metric_of("stagein")),
                (f"{label}: getJob → last input in place (s)", metric_of("getjob_to_last_input")),
                (f"{label}: stage-in overhead per extra input file (ms)", over)]
        for name, vals in rows:
            best = _best([vals[p] for p in REFS if vals[p]], False)
            r_ours, r_link = _ratio(vals["ours"], best), _ratio(vals["ours-link"], best)
            ratios[name] = {"ours": r_ours, "ours-link": r_link}
            lines.append(f"| {name} | " + " | ".join(_summary(list(vals[p].values())) for p in pilots) +
                         f" | {_summary(r_ours)} | {_summary(r_link)} |")
        if copy:
            lines.append(f"| {label}: plain `cp` of the same files (s) | | | {_summary(list(copy.values()))} | | | |")
    return "\n".join(lines), ratios


def _scenario_x(results: list) -> tuple[str, dict]:
    """Stage-in with real copies by all three pilots (xrdcp from XRootD, replicas in Rucio)."""
    pilots = ("pilot2", "pilot3", "ours")
    lines = ["| metric | " + " | ".join(LABELS[p] for p in pilots) +
             " | ours / Pilot 2 | ours / Pilot 3 | ours / best ref |", "|" + "---|" * 7]
    ratios: dict = {}
    for key, label in (("x-small", f"{SMALL[0]} × {SMALL[1] // 1024} kB"),
                       ("x-large", f"{LARGE[0]} × {LARGE[1] // 2 ** 20} MB")):
        if not any(r["scenario"] == key for r in results):
            continue
        over = {p: {i: 1000 * v for i, v in _stagein_overheads(results, key, p).items()} for p in pilots}
        checked = any("plain_copy_cksum" in r for r in results if r["scenario"] == key)
        rows = [(f"{label}: getJob → payload start (s)", _per_pilot(results, key, pilots, "stagein", 1.0)),
                (f"{label}: getJob → last input in place (s)",
                 _per_pilot(results, key, pilots, "getjob_to_last_input", 1.0)),
                (f"{label}: stage-in overhead per extra input file (ms)", over)]
        if checked:
            bare = {p: {i: 1000 * v for i, v in _stagein_overheads(results, key, p, "plain_copy").items()}
                    for p in pilots}
            rows += [(f"{label}: the same against a bare copy, xrdcp's checksum counted as overhead (ms)", bare),
                     (f"{label}: plain `xrdcp --cksum adler32:print` of the same files, faster way (s)",
                      _per_pilot(results, key, pilots, "plain_copy_cksum", 1.0))]
        rows.append((f"{label}: plain `xrdcp` of the same files, faster way (s)",
                     _per_pilot(results, key, pilots, "plain_copy", 1.0)))
        for name, vals in rows:
            best = _best([vals[p] for p in REFS if vals[p]], False)
            cells = [_summary(list(vals[p].values())) for p in pilots]
            if "plain" in name:
                lines.append(f"| {name} | " + " | ".join(cells) + " | | | |")
                continue
            by_ref = [_summary(_ratio(vals["ours"], vals[p])) for p in REFS]
            if "bare copy" in name:  # shown, not a target: the checksum is xrdcp's, asked for by all three
                lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(by_ref) +
                             f" | {_summary(_ratio(vals['ours'], best))} |")
                continue
            ratios[name] = _ratio(vals["ours"], best)
            lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(by_ref) +
                         f" | {_summary(ratios[name])} |")
    return "\n".join(lines), ratios


OUT_KINDS = (("o", "xrdcp to XRootD (root://)"), ("w", "gfal-copy to WebDAV (davs://, XrdHttp)"),
             ("u", "Rucio upload to XRootD"))


def _scenario_out(results: list) -> tuple[str, dict]:
    """Stage-out with real copies (o, w, u): stage-out time, the plain tool's, overhead per extra output."""
    pilots = ("pilot2", "pilot3", "ours")
    lines = ["| metric | " + " | ".join(LABELS[p] for p in pilots) +
             " | ours / Pilot 2 | ours / Pilot 3 | ours / best ref |", "|" + "---|" * 7]
    ratios: dict = {}
    for kind, how in OUT_KINDS:
        for size in ("base", "small", "large"):
            key = f"{kind}-{size}"
            if not any(r["scenario"] == key for r in results):
                continue
            n = next((r.get("stageout_outputs") for r in results if r["scenario"] == key), 0)
            label = f"{how}, {n} extra output(s)" if size != "base" else f"{how}, output and log only"
            rows = [(f"{label}: payload end → last file in place (s)",
                     {p: _values(_runs(results, key, p), lambda r: (r.get("phases") or {}).get("stageout"))
                      for p in pilots})]
            if size != "base":
                rows.append((f"{label}: stage-out overhead per extra output (ms)",
                             {p: {i: 1000 * v for i, v in stageout.run_overheads(results, key, p).items()}
                              for p in pilots}))
            rows.append((f"{label}: plain tool, the same number and size of files (s)",
                         _per_pilot(results, key, pilots, "plain_copy", 1.0)))
            for name, vals in rows:
                cells = [_summary(list(vals[p].values())) for p in pilots]
                if "plain" in name:
                    lines.append(f"| {name} | " + " | ".join(cells) + " | | | |")
                    continue
                best = _best([vals[p] for p in REFS if vals[p]], False)
                by_ref = [_summary(_ratio(vals["ours"], vals[p])) for p in REFS]
                if "overhead" in name:
                    ratios[name] = _ratio(vals["ours"], best)
                lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(by_ref) +
                             f" | {_summary(_ratio(vals['ours'], best))} |")
    return ("\n".join(lines) if len(lines) > 2 else ""), ratios


def _scenario_d(results: list) -> tuple[str, dict]:
    t = Table(results, "d")
    t.add("jobs finished", lambda r: r.get("finished"))
    t.add("jobs per minute", lambda r: _get(r, "multi.jobs_per_min"), higher_better=True)
    t.add("overhead per job (s)", lambda r: _get(r, "multi.overhead_per_job"))
    t.add("start → last final update (s)", lambda r: _get(r, "multi.span"))
    t.add("last final update → exit (s)", lambda r: _get(r, "multi.tail"))
    t.add("pilot-only CPU per job (s)", lambda r: r.get("cpu_pilot_per_job"))
    t.add("HTTP requests per job", lambda r: r.get("http_per_job"))
    t.add("peak RSS, pilot process (MB)", lambda r: r.get("peak_rss_mb"))
    return t.markdown(), t.ratios


def _verdict(ratios: list, limit: float) -> str:
    if not ratios:
        return "not measured"
    med = statistics.median(ratios)
    return f"{'met' if med <= limit else 'MISSED'} ({med:.3f})"


def _targets(a: dict, c: dict, d: dict, x: dict, out: Optional[dict] = None) -> str:
    rows = [("start → payload start ≤ 1/10 of best reference", a.get("start → payload start (s)"), 0.1),
            ("payload end → exit ≤ 1/10", a.get("payload end → exit (s)"), 0.1),
            ("pilot-only CPU per job ≤ 1/3", a.get("pilot-only CPU (s)"), 1 / 3),
            ("peak RSS ≤ best reference (pilot process)", a.get("peak RSS, pilot process (MB)"), 1.0),
            ("peak RSS ≤ best reference (all pilot processes)", a.get("peak RSS, all pilot processes (MB)"), 1.0),
            ("multi-job overhead per job ≤ 1/5", d.get("overhead per job (s)"), 0.2),
            ("HTTP requests per job ≤ references (all requests)", a.get("HTTP requests, all"), 1.0),
            ("HTTP requests per job ≤ references (PanDA server + queue/storage data)",
             a.get("HTTP requests: PanDA server + queue/storage data"), 1.0),
            ("HTTP requests per job ≤ references, multi-job (all)", d.get("HTTP requests per job"), 1.0),
            ("HTTP bytes sent per job ≤ best reference (all requests)", a.get("HTTP bytes sent (bodies)"), 1.0),
            ("HTTP bytes sent per job ≤ best reference (PanDA server + queue/storage data)",
             a.get("HTTP bytes sent: PanDA server + queue/storage data"), 1.0)]
    # like with like: links against the references' links (mv), copies against their copies (xrdcp); ours'
    # mv copies against their links is in the (c) table, not a target
    for key, value in c.items():
        if "overhead per extra input file" in key:
            rows.append((f"stage-in overhead per file ≤ 1/5, {key.split(':')[0]}, mv links (ours in symlink mode)",
                         value["ours-link"], 0.2))
    for key, value in (out or {}).items():  # issue 21 point 1: copies against the references' copies
        rows.append((f"stage-out overhead per extra output ≤ 1/5, {key.split(': ')[0]}", value, 0.2))
    for key, value in x.items():
        if "overhead per extra input file" in key:
            rows.append((f"stage-in overhead per file ≤ 1/5, {key.split(':')[0]}, xrdcp copies through Rucio",
                         value, 0.2))
    lines = ["| target | verdict (median ours / best reference) |", "|---|---|"]
    lines += [f"| {name} | {_verdict(ratios or [], limit)} |" for name, ratios, limit in rows]
    return "\n".join(lines)


def _phase_median(results: list, pilot: str, phase: str) -> float:
    """Median duration of one phase of scenario a (0 when not seen)."""
    return _median(results, "a", pilot, lambda r: _get(r, f"phases.{phase}")) or 0.0


def chart(results: list, path: Path) -> None:
    """Where the time goes: phases of scenario a, per-job overhead of d, per-file overhead of c."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pilots = [p for p in ("pilot2", "pilot3", "ours") if _runs(results, "a", p)]
    fig, axes = plt.subplots(2, 1, figsize=(11, 7.5), gridspec_kw={"height_ratios": [3, 2]})
    ax = axes[0]
    colors = ["#8c8c8c", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#d62728"]
    for row, pilot in enumerate(pilots):
        left = 0.0
        for phase, color in zip(PHASES, colors):
            width = _median(results, "a", pilot, lambda r, ph=phase: _get(r, f"phases.{ph}")) or 0.0
            ax.barh(row, width, left=left, color=color, edgecolor="white",
                    label=PHASE_LABELS[phase] if row == 0 else None)
            if width >= 1.5:
                ax.text(left + width / 2, row, f"{width:.1f}", ha="center", va="center", fontsize=8, color="white")
            left += width
        ax.text(left + 0.5, row, f"{left:.1f} s", va="center", fontsize=9)
        if left < 15:  # a short bar: spell out the phases too small to see
            small = ", ".join(f"{PHASE_LABELS[ph]} {_phase_median(results, pilot, ph):.2f}"
                              for ph in PHASES if ph != "payload")
            ax.text(left + 5, row, small, va="center", fontsize=7, color="#444444")
    ax.set_yticks(range(len(pilots)), [LABELS[p] for p in pilots])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since process start (medians)")
    ax.set_title("(a) one job, one input, 5 s payload: where the time goes")
    if pilots:
        ax.legend(ncol=6, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, -0.42))
    ax = axes[1]
    groups = []
    for pilot in ("pilot2", "pilot3", "ours", "ours-link"):
        d = _median(results, "d", pilot, lambda r: _get(r, "multi.overhead_per_job"))
        per_file = [_stagein_overheads(results, key, pilot) for key in ("c-small", "c-large", "x-small", "x-large")]
        groups.append((pilot, d, *(statistics.median(v.values()) if v else None for v in per_file)))
    names = ["(d) multi-job\noverhead per job", "(c) mv: per file,\n10 kB files", "(c) mv: per file,\n200 MB files",
             "(x) xrdcp: per file,\n10 kB files", "(x) xrdcp: per file,\n200 MB files"]
    width = 0.2
    for k, (pilot, *values) in enumerate(groups):
        xs = [j + (k - 1.5) * width for j in range(len(names))]
        heights = [max(v, 1e-4) if v is not None else 0 for v in values]
        bars = ax.bar(xs, heights, width, label=LABELS[pilot])
        for bar, value in zip(bars, values):
            if value is not None:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{value:.3g}", ha="center",
                        va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("seconds (log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _loads_line(results: list) -> str:
    """The machine's 1-minute load average before the runs (it is shared: wall times of short phases suffer)."""
    loads = [r["loadavg_before"] for r in results if isinstance(r.get("loadavg_before"), (int, float))]
    if not loads:
        return "Load average before the runs: not recorded."
    return (f"Load average (1 min) before each pilot run: median {statistics.median(loads):.2f}, "
            f"{min(loads):.2f}–{max(loads):.2f} over {len(loads)} runs.")


def write_report(document: dict, base: Path) -> tuple[Path, Path]:
    """Write ``<base>.md``, ``<base>.png`` and ``<base>.json``; return the first two paths."""
    import json

    base.parent.mkdir(parents=True, exist_ok=True)
    results = document["results"]
    md, png = base.with_suffix(".md"), base.with_suffix(".png")
    base.with_suffix(".json").write_text(json.dumps(document, indent=1))
    chart(results, png)
    machine, inst = document["machine"], document["install"]
    started = datetime.datetime.fromtimestamp(document["started"])
    minutes = (document.get("finished", document["started"]) - document["started"]) / 60
    parts = [f"# Pilot benchmark, {started:%Y-%m-%d %H:%M}, {machine['cores']} cores {machine['arch']}",
             "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['mem_gb']} GB, Linux "
             f"{machine['kernel']}. Ours at {_commits(document)}, Python {machine['python']} (clean venv, "
             f"pip-installed); Pilot 3 on the same Python; Pilot 2 on Python {inst['python39_version']} "
             f"({inst['python39_how']}). Runs: {document['runs']} of a, c and x, {document['runs_long']} of b and d, "
             f"interleaved (each round runs every pilot once, order rotated)"
             + (f"; {minutes:.0f} minutes in all." if "parts" not in document else "." + _parts_line(document)),
             "", _loads_line(results), "", f"![where the time goes]({png.name})", ""]
    a_md, a_ratios = _scenario_a(results) if _runs(results, "a", "ours") else ("not run", {})
    c_md, c_ratios = _scenario_c(results)
    x_md, x_ratios = _scenario_x(results)
    d_md, d_ratios = _scenario_d(results) if _runs(results, "d", "ours") else ("not run", {})
    out_md, out_ratios = _scenario_out(results)
    parts += ["## Targets", "", _targets(a_ratios, c_ratios, d_ratios, x_ratios, out_ratios), "",
              f"## (a) {SCENARIOS['a'].title}", "", "Medians [min–max] over the runs; ratios pair by pair.", "",
              a_md, ""]
    if _runs(results, "b", "ours"):
        parts += [f"## (b) {SCENARIOS['b'].title}", "", _scenario_b(results), ""]
    parts += ["## (c) stage-in with the mv copytool", "", C_NOTE, "", c_md or "not run", ""]
    parts += ["## (x) stage-in with real copies: xrdcp from XRootD, replicas in Rucio", "", X_NOTE, "",
              x_md or "not run", ""]
    parts += [f"## (d) {SCENARIOS['d'].title}", "", d_md, ""]
    if out_md:
        parts += ["## (o, w, u) stage-out with real copies", "", OUT_NOTE, "", out_md, ""]
    failed = [r for r in results if r["finished"] < r["jobs"] or r["timed_out"]]
    if failed:
        parts += ["## Runs with unfinished jobs", ""]
        parts += [f"- {r['scenario']} {r['pilot']} run {r['run']}: {r['finished']}/{r['jobs']} finished, exit "
                  f"{r['exit_status']}{', timed out' if r['timed_out'] else ''}" for r in failed]
        parts.append("")
    parts += [METHOD, ""]
    notes = base.with_name(base.name + ".notes.md")
    if notes.exists():  # hand-written analysis of this run, kept beside the generated report
        parts += [notes.read_text().rstrip(), ""]
    md.write_text("\n".join(parts))
    return md, png


C_NOTE = """The references' `mv` tool links inputs that lie next to the pilot; ours copies them from the
`file://` storage and checks their adler32, or links them in symlink mode. Links are compared with links;
ours' copies against their links are shown, not judged: (x) compares copies with copies."""

OUT_NOTE = """Outputs and log are copied by the queue's copytool to the loopback storage: `xrdcp` to XRootD (o),
`gfal-copy` to the XRootD server's WebDAV (w; the nginx WebDAV RSE has no checksums, which every pilot's gfal
tool asks for), the `rucio` copytool's upload to XRootD (u); the same queue settings for the three pilots.
Stage-out time: payload end → inode change time of the last output or log file in the RSE's directory.
Overhead per extra output: [(stage-out with N extra outputs − the median of the base run, output and log
only) − (the plain tool copying N files of the same size − the same for the base, nothing)] / N. The plain
tool (right before and right after each pilot's run, the mean): the faster of one `xrdcp --cksum
adler32:print` per file and one `xrdcp --parallel --infiles` call (o); one `gfal-copy -K adler32` per file
(w); one `rucio upload` of all files (u)."""

X_NOTE = """All three pilots copy their inputs with `xrdcp` from the loopback XRootD server (RSE `PILOT_XRD`):
the references after a Rucio `list_replicas` (they always ask), ours without one (the inputs lie on a
deterministic LAN storage of the queue, with size and adler32 in the job). The job's work dir is on tmpfs
(`/dev/shm`), so that the disk's write-back, whose speed varies by a factor of two between identical copies
on this machine, does not drown the pilots' own cost. Overhead per extra file: [(getJob → last input in place
with N inputs − the same in the one-input run x-base) − (plain copy of the N files − plain copy of the one)]
/ (N − 1). The plain copy is the faster of one `xrdcp` per file and one `xrdcp --parallel --infiles`, timed
into the same tmpfs right before and right after each pilot's run (the mean of the two), with
`--cksum adler32:print` as all three pilots' xrdcp tools run it (xrdcp reads each written file back to
checksum it); the overhead against the bare copy, which counts that checksum as the pilot's, is shown too.
x-large has at least 5 runs: its copies take 2-3 s and vary by ±0.4 s between identical runs."""

METHOD = """## How this was measured

See `bench/README.md`. In short: every pilot runs in its own PID namespace (`unshare -p -f --mount-proc`,
`PILOT_NOKILL=1`) from its own launch directory, with the same command line, environment and config
values, against the same dev server; one pilot at a time, rounds interleaved. Times come from outside:
process start/exit (harness), getJob and final updateJob (dev server records), payload start/end (the
payload script's stamps), end of stage-out (inode change time of the last output at its destination).
Pilot-only CPU = CPU of the whole process tree (wait4) minus the payload's own (bash `times`). RSS and
threads: /proc of the pilot's processes (payload excluded) sampled every 0.1 s; "pilot process" is the
pilot's main process, "all pilot processes" adds its helpers (Pilot 2's curl calls, for instance).
HTTP counts and bytes (request and reply bodies as sent) come from the dev server's request records,
Rucio trace posts included. Stage-in per file: when each input was put in place in the job's work dir
(inode change times listed by the payload), (getJob → last input with N inputs − with one) / (N − 1),
minus `cp`'s time per file for a pilot that copies. (getJob → payload start hides the references'
stage-in: they wait a fixed ~10 s there, and stage in during that wait.)

Caveats: the references' `mv` copytool does not read the storage: it symlinks inputs that lie in the
launch directory (placed there by the bench, as an ARC CE would) and moves outputs back there, while ours
copies from and to the `file://` storage and checks adler32; "ours, mv symlink mode" does it the
references' way. Their generic plug-in can only run a transformation that lies in the job's work dir,
so the payload script is the job's (first) input, run as `./bench-payload.sh` by all three pilots
(ours keeps the mode bits when it copies). Pilot 2 needs `--es-executor-type none`
(else its stage-in thread dies importing `pilot.user.generic.metadata`); all pilots get it. The machine
is shared with other work; see `loadavg_before` per run in the JSON."""
