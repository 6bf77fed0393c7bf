"""The ``workbench`` command: what the Makefile and schedulers call.

::

    workbench sample --persons 20000 --seed 42 --out data/raw      # make the embedded sample
    workbench sample --if-missing                                  # ... only when data/raw is empty
    workbench run                                                  # every notebook, headless
    workbench run --only 01_ingest 02_clean -p force=true          # some notebooks, a parameter
    workbench run --parameters params.yaml --run-id nightly
    workbench run --as-of 2026-06-30 --from 04                     # resume from notebook 04
    workbench run --language zh                                    # the segment report and the index in Chinese
    workbench run --jobs 1 --force 05_rfm                          # rerun 05 and what reads it, one at a time
    workbench map exports/members.csv --out my_mappings/01_members.yaml   # draft a mapping from a file
    workbench stage rfm -p as_of=2026-06-01                        # one stage without notebooks
    workbench audience "frequent_rebuyer and not churn_high"       # export an audience (hashed, consent honoured)
    workbench audience "live_viewer_never_bought" --campaign live-invite-2026-12 --holdout 0.1 --seed 7
    workbench audience --campaign-file campaign.yaml               # the same, declared in YAML

``workbench run`` exits non-zero when a notebook fails, naming the notebook and the cell;
the failed executed notebook stays in the run folder. It reuses every notebook whose
inputs did not change since an earlier successful run (``--force`` runs them anyway)
and runs independent notebooks at the same time (``--jobs``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml


def _parse_value(text: str) -> Any:
    """``-p key=value`` values are YAML scalars: 42, 0.5, true, null, 2026-01-31, text."""
    value = yaml.safe_load(text)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.parameters:
        p = Path(args.parameters)
        if not p.exists():
            raise SystemExit(f"workbench run: parameters file {p} not found.")
        loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"workbench run: {p} must hold a mapping of parameter: value. Got {type(loaded).__name__}.")
        params.update(loaded)
    for item in args.param or []:
        if "=" not in item:
            raise SystemExit(f"workbench run: -p expects key=value. Got {item!r}.")
        key, _, value = item.partition("=")
        params[key.strip()] = _parse_value(value)
    return params


def cmd_sample(args: argparse.Namespace) -> int:
    from .config import get_paths
    from .sample import has_raw_data, make_sample

    out = Path(args.out) if args.out else get_paths().raw
    if args.if_missing and has_raw_data(out):
        print(f"{out} already holds channel files: sample not regenerated (delete them or drop --if-missing).")
        return 0
    if has_raw_data(out) and not args.force and not args.if_missing:
        print(f"workbench sample: {out} already holds channel files. Use --force to overwrite them.",
              file=sys.stderr)
        return 2
    print(f"making the sample: {args.persons:,} persons, seed {args.seed}, into {out} ...")
    summary = make_sample(args.persons, seed=args.seed, out=out, start=args.start, end=args.end, progress=True)
    for name, f in summary["files"].items():
        print(f"  {name:<24} {f['rows']:>12,} rows  {f['path']}")
    print(f"{summary['rows']:,} rows in {summary['seconds']:.1f} s; ground truth in {out / '_truth'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .config import get_paths
    from .lock import RunLocked
    from .runner import NotebookFailed, run_pipeline

    paths = get_paths(args.data_dir, args.reports_dir)
    params = _parameters(args)
    if args.as_of:
        params["as_of"] = _parse_value(args.as_of)
    if args.language:
        params["language"] = args.language  # checked by run_pipeline, which also writes the index in it
    if args.only and args.start_from:
        raise SystemExit("workbench run: use --only or --from, not both.")
    force = True if args.force == [] else (args.force or False)
    try:
        result = run_pipeline(paths=paths, notebooks=args.only or None, parameters=params,
                              run_id=args.run_id, kernel_name=args.kernel, html=not args.no_html,
                              progress=not args.quiet, start_from=args.start_from, jobs=args.jobs, force=force,
                              engine=args.engine)
    except NotebookFailed as exc:
        print(f"workbench run: FAILED — {exc}", file=sys.stderr)
        return 1
    except (RunLocked, ValueError, FileNotFoundError) as exc:
        print(f"workbench run: {exc}", file=sys.stderr)
        return 2
    print(f"run {result.run_id}: {result.status}; report: {result.index_path}")
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from .privacy.keys import key_fingerprint, key_path, load_key

    key = load_key(create=True, log=print)
    print(f"pseudonymisation key: {key_path()} (fingerprint {key_fingerprint(key)}; keep it out of git, back it up)")
    return 0


def _person(args: argparse.Namespace) -> dict[str, Any]:
    return {"phone": args.phone, "email": args.email, "oneid": args.oneid}


def cmd_forget(args: argparse.Namespace) -> int:
    from .config import get_paths
    from .lock import RunLocked
    from .privacy.erasure import forget

    try:
        report = forget(get_paths(args.data_dir, args.reports_dir), **_person(args), dry_run=args.dry_run,
                        max_oneids=args.max_oneids)
    except (RunLocked, ValueError, KeyError) as exc:
        print(f"workbench forget: {exc}", file=sys.stderr)
        return 2
    summary = report.summary()
    print(summary.to_string(index=False) if len(summary) else "no rows removed")
    return 0


def cmd_access(args: argparse.Namespace) -> int:
    from .config import get_paths
    from .privacy.access import access_request

    try:
        out = access_request(get_paths(args.data_dir), **_person(args), out=args.out)
    except (ValueError, KeyError) as exc:
        print(f"workbench access: {exc}", file=sys.stderr)
        return 2
    print(f"everything held about the person: {out}")
    return 0


def cmd_consents(args: argparse.Namespace) -> int:
    from .config import get_paths
    from .privacy.consent import write_consent_ledger

    ledger = write_consent_ledger(get_paths(args.data_dir), as_of=args.as_of)
    print(ledger.groupby(["purpose", "status"]).size().unstack(fill_value=0).to_string())
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from .config import get_paths
    from .ingest import ingest_all
    from .mapping import MappingError, load_mappings

    try:
        result = ingest_all(get_paths(args.data_dir), mappings=load_mappings(args.mappings), force=args.force,
                            progress=True)
    except MappingError as exc:
        print(f"workbench ingest: {exc}", file=sys.stderr)
        return 2
    print(result.summary().to_string())
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from .clean import clean_all
    from .config import get_paths
    from .mapping import MappingError, load_mappings

    try:
        result = clean_all(get_paths(args.data_dir), mappings=load_mappings(args.mappings) if args.mappings else None,
                           config=args.config, progress=True)
    except MappingError as exc:
        print(f"workbench clean: {exc}", file=sys.stderr)
        return 2
    print(result.summary().to_string())
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from .config import get_paths
    from .stages import run_stage

    params = {}
    for item in args.param or []:
        if "=" not in item:
            raise SystemExit(f"workbench stage: -p expects key=value. Got {item!r}.")
        key, _, value = item.partition("=")
        params[key.strip()] = _parse_value(value)
    try:
        run_stage(args.name, get_paths(args.data_dir, args.reports_dir).ensure(), **params)
    except (ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        print(f"workbench stage {args.name}: {exc}", file=sys.stderr)
        return 2
    print(f"stage {args.name}: done")
    return 0


CAMPAIGN_FILE_KEYS = ("campaign_id", "name", "audience", "holdout", "seed", "stratify", "channel",
                      "response_window_days")


def cmd_audience(args: argparse.Namespace) -> int:
    from .audiences import export_audiences
    from .campaign_export import audience_members, export_campaign, audience_frame
    from .config import get_paths
    from .customer360 import load_customer_360

    spec: dict[str, Any] = {}
    if args.campaign_file:
        loaded = yaml.safe_load(Path(args.campaign_file).read_text(encoding="utf-8")) or {}
        unknown = [k for k in loaded if k not in CAMPAIGN_FILE_KEYS] if isinstance(loaded, dict) else ["?"]
        if unknown:
            print(f"workbench audience: {args.campaign_file} has an unknown key {unknown[0]!r}. Keys: "
                  f"{list(CAMPAIGN_FILE_KEYS)}.", file=sys.stderr)
            return 2
        spec.update(loaded)
    for key, value in (("audience", args.expression), ("campaign_id", args.campaign), ("name", args.name),
                       ("holdout", args.holdout), ("seed", args.seed), ("stratify", args.stratify),
                       ("channel", args.channel), ("response_window_days", args.response_window_days)):
        if value is not None:
            spec[key] = value
    if not spec.get("audience"):
        print("workbench audience: give an expression, e.g. \"frequent_rebuyer and not churn_high\", or a "
              "--campaign-file with 'audience'.", file=sys.stderr)
        return 2
    paths = get_paths(args.data_dir, args.reports_dir)
    try:
        frame = audience_frame(paths)
        members = audience_members(spec["audience"], frame)
        if args.count_only:
            print(f"{len(members):,} persons match {spec['audience']!r}")
            return 0
        profile = load_customer_360(paths)
        out = Path(args.out) if args.out else None
        if spec.get("campaign_id"):
            stratify = spec.get("stratify", "segment")
            record = export_campaign(spec["audience"], campaign_id=spec["campaign_id"], profile=profile, frame=frame,
                                     name=spec.get("name"), holdout=spec.get("holdout", 0.1),
                                     seed=spec.get("seed", 0), stratify=None if stratify in ("none", "") else stratify,
                                     channel=spec.get("channel", "ads"),
                                     response_window_days=spec.get("response_window_days", 30), paths=paths,
                                     folder=out)
            c = record["counts"]
            print(f"campaign {record['campaign_id']}: {c['members']:,} match, {c['eligible']:,} with consent and a "
                  f"contact -> {c['treatment']:,} treatment (exported to {record['file']}), {c['control']:,} control "
                  f"held out; record in {paths.processed / 'campaigns' / record['campaign_id']}")
        else:
            name = spec.get("name") or spec["audience"]
            summary = export_audiences(profile, {name: members}, paths=paths, folder=out)
            r = summary.iloc[0]
            print(f"audience {name!r}: {int(r['members']):,} match, {int(r['exported']):,} exported to {r['file']} "
                  f"(no consent {int(r['excluded_no_consent']):,}, revoked {int(r['excluded_consent_revoked']):,}, "
                  f"no contact {int(r['excluded_no_contact']):,})")
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as exc:
        print(f"workbench audience: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from .draft import map_command

    return map_command(args.file, out=args.out, channel=args.channel, role=args.role, raw_dir=args.raw_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="generate the embedded omnichannel sample data")
    s.add_argument("--persons", type=int, default=20_000, help="hidden persons (default 20000)")
    s.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    s.add_argument("--out", default=None, help="output folder (default: data/raw of the data dir)")
    s.add_argument("--start", default="2024-11-01", help="first day covered (default 2024-11-01)")
    s.add_argument("--end", default="2026-11-01", help="day after the last day covered (default 2026-11-01)")
    s.add_argument("--if-missing", action="store_true", help="do nothing when the folder already has channel files")
    s.add_argument("--force", action="store_true", help="overwrite existing channel files")
    s.set_defaults(func=cmd_sample)

    r = sub.add_parser("run", help="run the notebooks headless with papermill into reports/<run_id>/")
    r.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (names like 02_clean)")
    r.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="a notebook parameter (repeatable)")
    r.add_argument("--parameters", metavar="FILE.yaml", help="a YAML file of notebook parameters")
    r.add_argument("--run-id", default=None, help="name of the run folder (default: UTC timestamp)")
    r.add_argument("--as-of", default=None, metavar="DATE",
                   help="analysis date passed to every notebook that declares `as_of` (default: all data)")
    r.add_argument("--language", default=None, metavar="en|zh",
                   help="language of the reports and the run index, passed to every notebook that declares "
                        "`language` (default: en)")
    r.add_argument("--from", dest="start_from", default=None, metavar="NOTEBOOK",
                   help="resume: run this notebook (e.g. 04 or 04_customer_360) and the ones after it")
    r.add_argument("--data-dir", default=None, help="data folder (default: $WORKBENCH_DATA_DIR or ./data)")
    r.add_argument("--reports-dir", default=None, help="reports folder (default: $WORKBENCH_REPORTS_DIR or ./reports)")
    r.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    r.add_argument("--no-html", action="store_true", help="skip the HTML export")
    r.add_argument("--quiet", action="store_true", help="no per-cell progress bar")
    r.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="run at most N independent notebooks at once (default: the number of CPUs); "
                        "with 1 they run one after the other with a per-cell progress bar")
    r.add_argument("--force", nargs="*", default=None, metavar="NOTEBOOK",
                   help="rerun instead of reusing earlier results: every notebook (no name), or the named ones "
                        "(e.g. 05_rfm) and the notebooks that read their outputs. Not the same as -p force=true, "
                        "which makes notebook 01 re-read raw files it has ingested before")
    r.add_argument("--engine", default=None, metavar="FILE.yaml",
                   help="engine settings (engine: local | spark, master or Spark Connect URL; see "
                        "workbench/conf/engine.yaml): where the heavy stages run. Default: local")
    r.set_defaults(func=cmd_run)

    k = sub.add_parser("key", help="create (first time) and show the local pseudonymisation key")
    k.set_defaults(func=cmd_key)

    def person_options(p: argparse.ArgumentParser) -> None:
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--phone", help="the person's phone, any format (+86 138 0013 8000)")
        who.add_argument("--email", help="the person's e-mail")
        who.add_argument("--oneid", help="the person's OneID")
        p.add_argument("--data-dir", default=None)

    f = sub.add_parser("forget", help="erasure request: remove a person from every layer and suppress them")
    person_options(f)
    f.add_argument("--reports-dir", default=None)
    f.add_argument("--dry-run", action="store_true", help="report what would be removed; change nothing")
    f.add_argument("--max-oneids", type=int, default=5,
                   help="refuse when the identifier matches more OneIDs than this (default 5)")
    f.set_defaults(func=cmd_forget)

    a = sub.add_parser("access", help="access request: write everything held about a person to one JSON file")
    person_options(a)
    a.add_argument("--out", default=None, help="output file (default: data/privacy/access/<hash>.json)")
    a.set_defaults(func=cmd_access)

    cs = sub.add_parser("consents", help="write the reconciled consent ledger (data/processed/consents.parquet)")
    cs.add_argument("--as-of", default=None)
    cs.add_argument("--data-dir", default=None)
    cs.set_defaults(func=cmd_consents)

    i = sub.add_parser("ingest", help="run the ingest stage without notebooks")
    i.add_argument("--data-dir", default=None)
    i.add_argument("--mappings", default=None, help="a folder of channel mappings (default: the package's)")
    i.add_argument("--force", action="store_true", help="re-read files whose checksum is on record")
    i.set_defaults(func=cmd_ingest)

    c = sub.add_parser("clean", help="run the clean stage without notebooks")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--mappings", default=None, help="a folder of channel mappings (default: those ingest used)")
    c.add_argument("--config", default=None, help="cleaning configuration YAML")
    c.set_defaults(func=cmd_clean)

    st = sub.add_parser("stage", help="run one pipeline stage without notebooks (see workbench.stages)")
    st.add_argument("name", help="ingest, clean, identity, canonical, customer_360, rfm, clusters, engagement, "
                                 "churn, propensity, clv, tags, consents")
    st.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="a keyword of the stage function")
    st.add_argument("--data-dir", default=None)
    st.add_argument("--reports-dir", default=None)
    st.set_defaults(func=cmd_stage)

    au = sub.add_parser("audience", help="export an audience given as an expression over tags, segments and scores, "
                                         "optionally as a campaign with a control group")
    au.add_argument("expression", nargs="?", default=None,
                    help='e.g. "frequent_rebuyer and not churn_high" or "segment in [\'Champions\', \'Loyal\']"')
    au.add_argument("--name", default=None, help="audience / campaign name (default: the expression / the id)")
    au.add_argument("--campaign", default=None, metavar="ID",
                    help="export as campaign ID with a control group, recorded in data/processed/campaigns/ID/")
    au.add_argument("--campaign-file", default=None, metavar="FILE.yaml",
                    help=f"campaign settings in YAML (keys {', '.join(CAMPAIGN_FILE_KEYS)}); options override them")
    au.add_argument("--holdout", type=float, default=None, help="control-group share in [0, 0.5) (default 0.1)")
    au.add_argument("--seed", type=int, default=None, help="seed of the control-group draw (default 0)")
    au.add_argument("--stratify", default=None, help="segment column to stratify by (default segment; none: no strata)")
    au.add_argument("--channel", default=None, help="channel the file is sent to (default ads)")
    au.add_argument("--response-window-days", type=int, default=None, help="days to measure responses (default 30)")
    au.add_argument("--count-only", action="store_true", help="print how many persons match; write nothing")
    au.add_argument("--out", default=None, help="folder of the exported CSV (default: reports/interactive/audiences)")
    au.add_argument("--data-dir", default=None)
    au.add_argument("--reports-dir", default=None)
    au.set_defaults(func=cmd_audience)

    mp = sub.add_parser("map", help="draft a channel mapping (YAML) from a data file")
    mp.add_argument("file", help="the exported file (CSV, JSON lines, Parquet, Excel)")
    mp.add_argument("--out", default=None, help="write the YAML here (default: print it)")
    mp.add_argument("--channel", default=None, help="channel name (default: from the file name)")
    mp.add_argument("--role", default=None, help="profile, orders, returns, events or consents (default: guessed)")
    mp.add_argument("--raw-dir", default=None, help="the raw folder the file lies under (for the pattern)")
    mp.set_defaults(func=cmd_map)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
