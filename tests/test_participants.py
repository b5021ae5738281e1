"""participants.tsv: columns, rs6971 mapping and genotype flags."""

from __future__ import annotations

import pytest

from tspo_bidsapp.exitcodes import InputProblems
from tspo_bidsapp.io.participants import (
    ParticipantInfo,
    genotype_from_rs6971,
    genotype_warnings,
    parse_participants,
)
from tspo_bidsapp.tracers import lookup_tracer


def _tsv(tmp_path, text):
    path = tmp_path / "participants.tsv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("value", "expected"),
    [("C/C", "HAB"), ("C/T", "MAB"), ("T/C", "MAB"), ("T/T", "LAB"), ("ct", "MAB"), ("CC", "HAB"),
     ("C|T", "MAB"), ("A/T", None), ("C", None), ("C/T/T", None)],
)  # fmt: skip
def test_rs6971_mapping(value, expected):
    assert genotype_from_rs6971(value) == expected


def test_parse_all_columns(tmp_path):
    path = _tsv(
        tmp_path,
        "participant_id\tgroup\tage\tsex\tedss\trs6971\tsite\n"
        "sub-01\trrms\t34.5\tF\t3.5\tC/T\tA\n"
        "sub-02\tHC\tn/a\tM\tn/a\tT/T\tB\n"
        "sub-03\tPPMS\t61\t\t6\tn/a\tA\n",
    )
    people, warnings = parse_participants(path)
    assert warnings == []
    assert people["01"] == ParticipantInfo("01", "RRMS", 34.5, "F", 3.5, "MAB", {"site": "A"})
    assert people["02"].tspo_genotype == "LAB" and people["02"].age is None
    assert people["03"].tspo_genotype is None and people["03"].sex is None
    assert people["03"].edss == 6.0


def test_both_genotype_columns_must_agree(tmp_path):
    path = _tsv(
        tmp_path, "participant_id\ttspo_genotype\trs6971\nsub-01\tHAB\tC/C\nsub-02\tHAB\tT/T\n"
    )
    with pytest.raises(InputProblems) as info:
        parse_participants(path)
    ((where, field, message),) = info.value.problems
    assert where == path and field == "rs6971"
    assert message == "sub-02: rs6971 T/T means LAB but tspo_genotype says HAB"


def test_bad_values_name_file_column_and_participant(tmp_path):
    path = _tsv(
        tmp_path,
        "participant_id\tgroup\tage\tedss\ttspo_genotype\n"
        "sub-01\tRRMS\tforty\t2\tHAB\n"
        "sub-02\tSPMS\t50\t11\tHIGH\n"
        "03\tHC\t30\t0\tMAB\n",
    )
    with pytest.raises(InputProblems) as info:
        parse_participants(path)
    problems = [(field, message) for _, field, message in info.value.problems]
    assert problems == [
        ("age", "sub-01: 'forty' is not a number"),
        ("edss", "sub-02: EDSS 11 is outside 0-10"),
        ("tspo_genotype", "sub-02: 'HIGH' is not one of HAB, MAB, LAB"),
        ("participant_id", "'03' is not of the form sub-<label>"),
    ]
    assert info.value.exit_code == 16


def test_unknown_group_is_kept_with_a_warning(tmp_path):
    people, warnings = parse_participants(_tsv(tmp_path, "participant_id\tgroup\nsub-01\tRIS\n"))
    assert people["01"].group == "RIS"
    assert len(warnings) == 1 and "'RIS', not one of HC, RRMS, SPMS, PPMS, CIS" in warnings[0]


def test_genotype_flags_by_tracer_generation():
    pbr28, pk11195 = lookup_tracer("PBR28"), lookup_tracer("PK11195")
    lab = ParticipantInfo("01", tspo_genotype="LAB")
    unknown = ParticipantInfo("02")
    hab = ParticipantInfo("03", tspo_genotype="HAB")
    assert "low-affinity binder (LAB)" in genotype_warnings(lab, pbr28)[0]
    assert "TSPO genotype unknown" in genotype_warnings(unknown, pbr28)[0]
    assert "TSPO genotype unknown" in genotype_warnings(None, pbr28)[0]
    assert genotype_warnings(hab, pbr28) == []
    assert genotype_warnings(lab, pk11195) == []  # first generation: insensitive to rs6971
    assert genotype_warnings(lab, None) == []
