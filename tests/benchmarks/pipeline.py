"""``make bench``: the whole default report, cold and rerun, and whether its results changed.

1. makes the default sample (20,000 persons, seed 42) in a fresh data folder (not timed);
2. a cold ``workbench run`` (every notebook executed) — wall seconds and the per-notebook table;
3. an immediate rerun with nothing changed (every notebook reused) — wall seconds, and a check
   that the rerun's folder is complete (every notebook's HTML present, the index marks reuse);
4. compares the cold run's results with a reference recorded from a run before the speed work
   (``tests/benchmarks/reference_results.json``): the OneID of every record, the RFM segment
   counts, churn and propensity ROC AUC and top-decile lift (within ±0.005) and the audience files
   (byte-equal).

Results go to ``reports/benchmarks/pipeline.json`` and ``.md``.

    python -m tests.benchmarks.pipeline                 # the default sample
    python -m tests.benchmarks.pipeline --record-reference --data data --run reports/latest
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).parents[2]
REFERENCE = Path(__file__).with_name("reference_results.json")
TOLERANCE = 0.005


def summarise(data: Path, run_dir: Path) -> dict:
    """The results a speed change must not alter, from a data folder and a run folder."""
    processed = Path(data) / "processed"
    rec = pd.read_parquet(processed / "oneid_records.parquet", columns=["channel", "record_id", "oneid"])
    rec = rec.sort_values(["channel", "record_id"], kind="stable")
    oneids = hashlib.sha256(pd.util.hash_pandas_object(rec, index=False).to_numpy().tobytes()).hexdigest()
    rfm = pd.read_parquet(processed / "rfm_segments.parquet", columns=["segment"])["segment"].value_counts()
    models = {}
    for task in ("churn", "propensity"):
        card = json.loads((processed / "models" / f"{task}.card.json").read_text(encoding="utf-8"))
        m = card["metrics"]["model"]
        models[task] = {"roc_auc": round(float(m["roc_auc"]), 6), "top_decile_lift": round(float(m["top_decile_lift"]), 6)}
    audiences = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in sorted((Path(run_dir) / "audiences").glob("*")) if p.is_file()}
    return {"records": int(len(rec)), "oneids": int(rec["oneid"].nunique()), "oneid_assignment_sha256": oneids,
            "rfm_segments": {str(k): int(v) for k, v in rfm.sort_index().items()}, "models": models,
            "audiences": audiences}


def compare(got: dict, ref: dict) -> list[str]:
    """Differences beyond tolerance (empty: the results are unchanged)."""
    problems = []
    for key in ("records", "oneids", "oneid_assignment_sha256", "rfm_segments"):
        if got[key] != ref[key]:
            problems.append(f"{key}: {got[key]!r} != reference {ref[key]!r}")
    for task, metrics in ref["models"].items():
        for name, value in metrics.items():
            if abs(got["models"][task][name] - value) > TOLERANCE:
                problems.append(f"{task} {name}: {got['models'][task][name]} vs reference {value} (tolerance {TOLERANCE})")
    for name, sha in ref["audiences"].items():
        if name == "summary.json":
            continue  # holds the run id and time
        if got["audiences"].get(name) != sha:
            problems.append(f"audience file {name} differs from the reference")
    extra = set(got["audiences"]) - set(ref["audiences"])
    if extra:
        problems.append(f"audience files not in the reference: {sorted(extra)}")
    return problems


def _run(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jobs", type=int, default=None, help="workbench run --jobs (default: the runner's)")
    ap.add_argument("--keep", action="store_true", help="keep the data and reports folders")
    ap.add_argument("--record-reference", action="store_true",
                    help="write the reference from --data and --run instead of benchmarking")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--run", type=Path)
    a = ap.parse_args(argv)
    if a.record_reference:
        ref = summarise(a.data, a.run.resolve())
        manifest = json.loads((a.run / "manifest.json").read_text(encoding="utf-8"))
        ref["recorded_from"] = {"run_id": manifest["run_id"], "git": manifest.get("git"),
                                "seconds": {n["name"]: n["seconds"] for n in manifest["notebooks"]}}
        REFERENCE.write_text(json.dumps(ref, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {REFERENCE}")
        return 0
    wb = str(Path(sys.executable).with_name("workbench"))
    root = Path(tempfile.mkdtemp(prefix="wb-bench-pipeline-"))
    data, reports = root / "data", root / "reports"
    env = {**os.environ, "MPLBACKEND": "agg"}
    jobs = [] if a.jobs is None else ["--jobs", str(a.jobs)]
    try:
        subprocess.run([wb, "sample", "--persons", str(a.persons), "--seed", str(a.seed), "--out", str(data / "raw")],
                       check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        run = [wb, "run", "--data-dir", str(data), "--reports-dir", str(reports), "--quiet", *jobs]
        cold = _run([*run, "--run-id", "cold"], env)
        rerun = _run([*run, "--run-id", "rerun"], env)
        cold_m = json.loads((reports / "cold" / "manifest.json").read_text(encoding="utf-8"))
        re_m = json.loads((reports / "rerun" / "manifest.json").read_text(encoding="utf-8"))
        complete = all((reports / "rerun" / n["html"]).exists() for n in re_m["notebooks"] if n.get("html"))
        reused = [n["name"] for n in re_m["notebooks"] if n.get("status") == "reused"]
        results = summarise(data, reports / "cold")
        ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
        problems = compare(results, ref)
        out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "persons": a.persons, "cold_seconds": round(cold, 1), "rerun_seconds": round(rerun, 1),
               "rerun_complete": complete, "rerun_reused": reused,
               "notebooks": {n["name"]: n["seconds"] for n in cold_m["notebooks"]},
               "reference_notebooks": ref["recorded_from"]["seconds"], "results": results,
               "results_unchanged": not problems, "differences": problems}
        folder = ROOT / "reports" / "benchmarks"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pipeline.json").write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
        lines = ["| notebook | before (s) | now (s) |", "|---|---:|---:|"]
        for name, before in ref["recorded_from"]["seconds"].items():
            lines.append(f"| {name.removesuffix('.ipynb')} | {before:.1f} | {out['notebooks'].get(name, float('nan')):.1f} |")
        lines.append(f"| **whole run (wall)** | {sum(ref['recorded_from']['seconds'].values()):.1f} (sum) | {cold:.1f} |")
        lines.append(f"| unchanged rerun (wall) | | {rerun:.1f} |")
        (folder / "pipeline.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines))
        print(f"rerun complete: {complete}; reused {len(reused)}/{len(re_m['notebooks'])}")
        print("results unchanged" if not problems else "RESULTS CHANGED:\n  " + "\n  ".join(problems))
        return 0 if not problems and complete else 1
    finally:
        if a.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
