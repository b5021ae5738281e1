#!/usr/bin/env python3
"""Write ``boutiques.json`` (a Boutiques descriptor of ``tspo-bidsapp``) from the argparse parser.

Every option of :func:`tspo_bidsapp.cli.parser.build_parser` becomes one descriptor input
(``--help`` and ``--version`` excepted), its argparse group becomes a descriptor group, and
the exit codes come from :mod:`tspo_bidsapp.exitcodes`. Re-run after changing the parser:

    python scripts/make_boutiques.py            # writes boutiques.json at the repository root
    python scripts/make_boutiques.py --check    # exit 1 if boutiques.json is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from tspo_bidsapp import __version__, exitcodes
from tspo_bidsapp.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTOR = ROOT / "boutiques.json"
IMAGE = f"tspo-bidsapp:{__version__}"
SKIPPED_ACTIONS = (argparse._HelpAction, argparse._VersionAction)
ANALYSIS_LEVELS = ["participant", "group"]
ERROR_TEXT = {
    "EX_FAILED": "the workflow ran and a processing step failed (see OUTPUT_DIR/logs)",
    "EX_INVALID_BIDS": "the input dataset is not valid BIDS, or a PET sidecar is unusable",
    "EX_BAD_ANALYSIS_LEVEL": "the analysis level is neither 'participant' nor 'group'",
    "EX_NOTHING_SELECTED": "the participant/session/tracer labels select no data",
    "EX_USAGE": "bad command-line usage",
    "EX_MISSING_INPUT": "a required input (T1w, PET, folder, plugin file) is missing",
}
# Inputs whose value is a folder that the run creates (Boutiques 'File' must exist).
CREATED_DIRS = {"output_dir", "work_dir"}


def checked_choices() -> dict[str, list[str]]:
    """Values that parse_args checks itself (the parser declares no argparse choices)."""
    from tspo_bidsapp.quant.pvc import PVC_METHODS
    from tspo_bidsapp.quant.reference import REF_REGIONS
    from tspo_bidsapp.quant.regional import MODELS

    return {
        "analysis_level": list(ANALYSIS_LEVELS),
        "ref_region": list(REF_REGIONS),
        "pvc": list(PVC_METHODS),
        "models": [m.lower() for m in MODELS],
    }


def skipped(action: argparse.Action) -> bool:
    """--help and --version describe the tool rather than a processing run."""
    return isinstance(action, SKIPPED_ACTIONS)


def input_id(action: argparse.Action) -> str:
    return re.sub(r"\W", "_", action.dest)


def parser_options(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """{dest: option strings} of every argument the descriptor must describe."""
    return {a.dest: list(a.option_strings) for a in parser._actions if not skipped(a)}


def _help(action: argparse.Action) -> str:
    text = (action.help or action.dest).replace("%(default)s", str(action.default))
    if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
        text += f" (default: {action.default})"
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def describe_input(action: argparse.Action) -> dict:
    """One Boutiques input for one argparse action."""
    ident = input_id(action)
    entry: dict = {
        "id": ident,
        "name": ident.replace("_", " ").capitalize(),
        "description": _help(action),
        "value-key": f"[{ident.upper()}]",
        "optional": not (action.required or not action.option_strings),
    }
    flag = max(action.option_strings, key=len) if action.option_strings else None
    # The shortest long option is the one documented; a single-dash alias stays an alias.
    longs = [o for o in action.option_strings if o.startswith("--")]
    if longs:
        flag = sorted(longs, key=lambda o: ("_" in o, len(o)))[0]
    if isinstance(action, argparse._CountAction):
        # -v / -vv: the value is the whole flag, placed verbatim on the command line.
        short = min(action.option_strings, key=len)
        entry.update(type="String", **{"value-choices": [short, short + "v"]})
        return entry
    if action.nargs == 0:  # store_true / store_false / store_const
        entry.update(type="Flag", **{"command-line-flag": flag})
        return entry
    if flag:
        entry["command-line-flag"] = flag
    if action.type is int:
        entry.update(type="Number", integer=True)
        if action.dest in ("nprocs", "omp_nthreads"):
            entry["minimum"] = 1
    elif action.type is float:
        entry.update(type="Number", integer=False)
    elif action.type is Path and action.dest not in CREATED_DIRS:
        entry["type"] = "File"
    else:
        entry["type"] = "String"
    if action.choices:
        entry["value-choices"] = [str(c) for c in action.choices]
    elif action.dest in checked_choices():
        entry["value-choices"] = checked_choices()[action.dest]
    if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
        default = action.default
        entry["default-value"] = (
            [str(v) for v in default]
            if isinstance(default, list)
            else (str(default) if entry["type"] in ("String", "File") else default)
        )
    if action.nargs in ("+", "*") or isinstance(action.nargs, int) and action.nargs > 1:
        entry["list"] = True
        if action.nargs == "+":
            entry["min-list-entries"] = 1
        elif isinstance(action.nargs, int):
            entry["min-list-entries"] = entry["max-list-entries"] = action.nargs
    return entry


def describe_groups(parser: argparse.ArgumentParser) -> list[dict]:
    groups = []
    for group in parser._action_groups:
        members = [input_id(a) for a in group._group_actions if not skipped(a)]
        if not members or group.title in ("positional arguments", "options"):
            continue
        ident = re.sub(r"\W+", "_", group.title).strip("_")
        groups.append({"id": ident, "name": group.title.capitalize(), "members": members})
    for group in parser._mutually_exclusive_groups:
        actions = [a for a in group._group_actions if not skipped(a)]
        flags = ", ".join(max(a.option_strings, key=len) for a in actions)
        groups.append(
            {"id": f"one_of_{input_id(actions[0])}", "name": f"At most one of {flags}",
             "members": [input_id(a) for a in actions], "mutually-exclusive": True}
        )  # fmt: skip
    return groups


def error_codes() -> list[dict]:
    codes = []
    for name, value in sorted(vars(exitcodes).items(), key=lambda kv: str(kv[1])):
        if name.startswith("EX_") and name != "EX_OK":
            codes.append({"code": value, "description": ERROR_TEXT.get(name, name)})
    return sorted(codes, key=lambda c: c["code"])


def output_files() -> list[dict]:
    def out(ident: str, name: str, template: str, description: str, optional: bool) -> dict:
        return {"id": ident, "name": name, "path-template": template,
                "description": description, "optional": optional}  # fmt: skip

    return [
        out("derivatives_dataset", "Derivatives dataset", "[OUTPUT_DIR]",
            "BIDS-Derivatives dataset: per-participant maps, TACs, tables and reports.", False),
        out("dataset_description", "Derivatives description",
            "[OUTPUT_DIR]/dataset_description.json",
            "BIDS dataset_description.json of the derivatives (GeneratedBy).", False),
        out("logs", "Run logs", "[OUTPUT_DIR]/logs",
            "The saved run configuration of every run and crash reports.", False),
        out("group_table", "Group table", "[OUTPUT_DIR]/group/participants.tsv",
            "Group level: one row per participant with its outcome measures.", True),
    ]  # fmt: skip


def build_descriptor() -> dict:
    parser = build_parser()
    actions = [a for a in parser._actions if not skipped(a)]
    inputs = [describe_input(a) for a in actions]
    positional = [
        i["value-key"] for i, a in zip(inputs, actions, strict=True) if not a.option_strings
    ]
    optional = [i["value-key"] for i, a in zip(inputs, actions, strict=True) if a.option_strings]
    return {
        "name": "tspo-bidsapp",
        "tool-version": __version__,
        "schema-version": "0.5",
        "author": "tspo-bidsapp developers",
        "description": (parser.description or "").strip(),
        "url": "https://github.com/tspo-bidsapp/tspo-bidsapp",
        "command-line": " ".join(["tspo-bidsapp", *positional, *optional]),
        "container-image": {
            "type": "docker",
            "image": IMAGE,
            "entrypoint": True,
        },
        "inputs": inputs,
        "groups": describe_groups(parser),
        "output-files": output_files(),
        "error-codes": error_codes(),
        "suggested-resources": {"cpu-cores": 4, "ram": 8, "walltime-estimate": 3600},
        "tags": {"domain": ["neuroinformatics", "pet", "mri", "bids", "multiple-sclerosis"]},
    }


def render() -> str:
    return json.dumps(build_descriptor(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--out", type=Path, default=DESCRIPTOR)
    cli.add_argument("--check", action="store_true", help="only check that --out is current")
    args = cli.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run scripts/make_boutiques.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
