"""boutiques.json describes the command line exactly: every parser option is a descriptor input
and every input an option, the file is what scripts/make_boutiques.py writes from the parser,
``bosh validate`` accepts it and ``bosh exec simulate`` builds a command the parser accepts."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
from pathlib import Path

import pytest

from tspo_bidsapp import __version__, exitcodes
from tspo_bidsapp.cli.parser import build_parser, parse_args

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTOR = ROOT / "boutiques.json"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_boutiques", ROOT / "scripts/make_boutiques.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def descriptor() -> dict:
    return json.loads(DESCRIPTOR.read_text())


def _parser_actions() -> dict[str, argparse.Action]:
    skipped = (argparse._HelpAction, argparse._VersionAction)
    return {a.dest: a for a in build_parser()._actions if not isinstance(a, skipped)}


def test_every_parser_option_is_an_input_and_back(descriptor):
    actions = _parser_actions()
    inputs = {i["id"]: i for i in descriptor["inputs"]}
    assert set(actions) - set(inputs) == set(), "options missing from boutiques.json"
    assert set(inputs) - set(actions) == set(), "inputs that the parser does not know"
    for dest, action in actions.items():
        entry = inputs[dest]
        if action.option_strings:
            if isinstance(action, argparse._CountAction):
                flags = set(entry["value-choices"])
                assert all(f.lstrip("-").strip("v") == "" for f in flags), dest
            else:
                assert entry["command-line-flag"] in action.option_strings, dest
                assert (entry["type"] == "Flag") == (action.nargs == 0), dest
            assert entry["optional"] is (not action.required), dest
        else:
            assert "command-line-flag" not in entry and entry["optional"] is False, dest
        is_list = action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1)
        assert bool(entry.get("list")) == is_list, dest
        if isinstance(action.nargs, int) and action.nargs > 1:
            assert entry["min-list-entries"] == entry["max-list-entries"] == action.nargs, dest
        if action.choices:
            assert entry["value-choices"] == [str(c) for c in action.choices], dest
        if action.type is int:
            assert entry["type"] == "Number" and entry["integer"] is True, dest
        assert entry["value-key"] in descriptor["command-line"], dest


def test_file_is_what_the_generator_writes(descriptor):
    expected = json.loads(_generator().render())
    assert descriptor == expected, "boutiques.json is stale: run python scripts/make_boutiques.py"
    assert descriptor["tool-version"] == __version__
    assert descriptor["container-image"]["image"] == f"tspo-bidsapp:{__version__}"


def test_error_codes_are_the_cli_exit_codes(descriptor):
    declared = {v for k, v in vars(exitcodes).items() if k.startswith("EX_") and v != 0}
    assert {e["code"] for e in descriptor["error-codes"]} == declared
    assert {16, 17, 18, 64, 66} <= declared


def test_groups_and_outputs_refer_to_inputs(descriptor):
    ids = {i["id"] for i in descriptor["inputs"]}
    for group in descriptor["groups"]:
        assert set(group["members"]) <= ids, group["id"]
    templates = {o["id"]: o["path-template"] for o in descriptor["output-files"]}
    assert all(t.startswith("[OUTPUT_DIR]") for t in templates.values())
    resources = descriptor["suggested-resources"]
    assert resources["cpu-cores"] >= 1 and resources["ram"] >= 4


def test_bosh_validate():
    pytest.importorskip("boutiques")
    from boutiques import bosh

    bosh(["validate", str(DESCRIPTOR)])  # raises DescriptorValidationError when invalid


def _sample_value(entry: dict, tmp_path: Path):
    """A valid value for one input, chosen from its type (a few need a specific form)."""
    if entry["type"] == "File" and entry.get("list"):
        return [str(tmp_path / "derivatives")]
    specific = {
        "bids_dir": str(tmp_path / "bids"),
        "output_dir": str(tmp_path / "out"),
        "work_dir": str(tmp_path / "work"),
        "analysis_level": "participant",
        "nprocs": 2,
        "omp_nthreads": 1,
        "mem": "4GB",
        "use_plugin": str(tmp_path / "plugin.yml"),
        "verbosity": "-vv",
    }
    if entry["id"] in specific:
        return specific[entry["id"]]
    if entry["type"] == "Flag":
        return True
    if "value-choices" in entry:
        value = entry["value-choices"][0]
    elif entry["type"] == "Number" and "default-value" in entry and not entry.get("list"):
        value = entry["default-value"]  # the parser's own default is valid by construction
    elif entry["type"] == "Number":
        value = 1 if entry.get("integer") else 0.5
    elif entry["type"] == "File":
        value = str(tmp_path / "plugin.yml")
    else:
        value = "01"
    if not entry.get("list"):
        return value
    if entry["type"] == "Number" and entry.get("max-list-entries", 1) > 1:  # e.g. START END
        return [value * (i + 1) for i in range(entry["max-list-entries"])]
    return [value] * entry.get("min-list-entries", 1)


def _one_per_exclusive_group(descriptor: dict) -> set[str]:
    """Inputs left out of a full invocation: all but the first of a mutually exclusive group."""
    left_out: set[str] = set()
    for group in descriptor.get("groups", []):
        if group.get("mutually-exclusive"):
            left_out |= set(group["members"][1:])
    return left_out


def _simulate(capsys, args: list[str]) -> list[str]:
    from boutiques import bosh

    capsys.readouterr()
    bosh(["exec", "simulate", str(DESCRIPTOR), *args])
    out = capsys.readouterr().out
    line = [s for s in out.splitlines() if s.startswith("tspo-bidsapp ")]
    assert len(line) == 1, out
    return shlex.split(line[0])


def test_bosh_simulate_builds_a_command_the_parser_accepts(descriptor, tmp_path, capsys):
    pytest.importorskip("boutiques")
    (tmp_path / "bids").mkdir()
    (tmp_path / "derivatives").mkdir()
    (tmp_path / "plugin.yml").write_text("plugin: MultiProc\nplugin_args: {n_procs: 2}\n")
    left_out = _one_per_exclusive_group(descriptor)
    invocation = {
        e["id"]: _sample_value(e, tmp_path) for e in descriptor["inputs"] if e["id"] not in left_out
    }
    inv_file = tmp_path / "invocation.json"
    inv_file.write_text(json.dumps(invocation))

    argv = _simulate(capsys, ["-i", str(inv_file)])
    assert argv[0] == "tspo-bidsapp"
    config = parse_args(argv[1:])
    assert config.bids_dir == (tmp_path / "bids").resolve()
    assert config.analysis_level == "participant"
    assert config.participant_label == ("01",)
    assert config.plugin == "MultiProc" and config.plugin_args == {"n_procs": 2}
    assert (config.nprocs, config.omp_nthreads, config.mem_gb) == (2, 1, 4.0)
    assert config.skip_bids_validation and config.verbosity == 2
    # Every input of the invocation reached the command line.
    opts = build_parser().parse_args(argv[1:])
    for dest in set(_parser_actions()) - left_out:
        assert getattr(opts, dest) not in (None, False, []), dest


def test_bosh_simulate_random_invocations_are_well_formed(capsys):
    pytest.importorskip("boutiques")
    parser = build_parser()
    for _ in range(3):
        argv = _simulate(capsys, [])
        opts = parser.parse_args(argv[1:])  # raises UsageError on a malformed command
        assert opts.analysis_level in ("participant", "group")
