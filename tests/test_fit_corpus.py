"""FIT import against the devices on the real-file corpus (tests/data/fit-corpus, SOURCES.md).

Every session on foot with a device summary must agree with it: distance ±1 %, average HR
±1 bpm, cadence ±1 step/min, timer time ±1 s. Where the device's summary disagrees with its
own records (``DISAGREES``, docs/import-formats.md "Where devices disagree with their
records"), we follow the records and check against the figure recomputed from them in
``refs.json``. Run this file as a script for the table of our figures against the device's:
``.venv/bin/python tests/test_fit_corpus.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.replay.fit import Activity, read_fit

CORPUS = Path(__file__).parent / "data" / "fit-corpus"
REFS: dict[str, dict[str, Any]] = {
    e["file"]: e for e in json.loads((CORPUS / "refs.json").read_text(encoding="utf-8"))
}

# (file, session index, figure) → why we follow the records, not the device's summary.
DISAGREES: dict[tuple[str, int, str], str] = {
    ("vivoactive-hr-smartrec.fit", 0, "hr"): "device counts 39 recording gaps > 10 s",
    ("vivoactive-hr-smartrec.fit", 0, "cadence"): "device counts gaps and zero cadence while "
    "moving (wrist cadence lost)",
    ("fenix6s-ultratrail-smartrec.fit", 0, "cadence"): "device counts 1257 s of zero cadence "
    "recorded while moving (median 1.37 m/s: wrist cadence lost on steep trail)",
    ("ipbike-run-hrv.fit", 0, "hr"): "the app's session and lap averages sit 0.6-4 bpm under "
    "its own records (lap 2: 173 vs 177.3)",
    ("fr920xt-two-run-sessions.fit", 1, "cadence"): "a 2-s session: the device averages its 3 "
    "records with equal weight",
    ("fr610-smartrec-pauses.fit", 0, "timer"): "10 timer stops with whole-second event times "
    "(1.15 s short)",
}

SESSIONS = [
    (name, i)
    for name, e in sorted(REFS.items())
    for i, s in enumerate(e["session_device"]["sessions"])
    if s.get("sport") in {"running", "walking", "generic"}
]


def _activity(name: str, index: int) -> Activity:
    (act,) = [a for a in read_fit(CORPUS / name, athlete="ann") if a.session_index == index]
    return act


def _records_ref(name: str, index: int) -> dict[str, Any]:
    e = REFS[name]
    if "records_per_session" in e:
        per: list[dict[str, Any]] = e["records_per_session"]
        return per[index]
    records: dict[str, Any] = e["records"]
    return records


@pytest.mark.parametrize(("name", "index"), SESSIONS)
def test_corpus_session_agrees_with_the_device(name: str, index: int) -> None:
    act = _activity(name, index)
    s, t = act.summary, act.totals
    assert s is not None
    assert t is not None
    ref = _records_ref(name, index)
    assert s.total_distance_m is not None
    assert t.distance_m is not None
    assert t.distance_m == pytest.approx(s.total_distance_m, rel=0.01)
    assert s.total_timer_time_s is not None
    if (name, index, "timer") in DISAGREES:
        assert abs(t.timer_time_s - s.total_timer_time_s) <= 2.0
    else:
        assert abs(t.timer_time_s - s.total_timer_time_s) <= 1.0
    if s.avg_heart_rate_bpm is not None:
        assert t.avg_heart_rate_bpm is not None
        if (name, index, "hr") in DISAGREES:
            # We follow the records: the time-weighted mean of refs.json (gaps excluded).
            assert t.avg_heart_rate_bpm == pytest.approx(ref["hr_time_weighted_mean"], abs=0.5)
        else:
            assert abs(t.avg_heart_rate_bpm - s.avg_heart_rate_bpm) <= 1.0
    if s.avg_cadence_spm:
        assert t.avg_cadence_spm is not None
        if (name, index, "cadence") in DISAGREES:
            # Near the records' plain mean over non-zero cadence (refs.json), not the device.
            assert t.avg_cadence_spm == pytest.approx(ref["cadence_mean_spm"], abs=5.0)
            assert abs(t.avg_cadence_spm - s.avg_cadence_spm) > 1.0
        else:
            assert abs(t.avg_cadence_spm - s.avg_cadence_spm) <= 1.0


def test_every_corpus_file_is_covered() -> None:
    fit_files = {p.name for p in CORPUS.glob("*.fit")}
    assert fit_files == set(REFS)
    assert len(fit_files) == 21
    with_summary = {n for n, _ in SESSIONS}
    # Only the damaged file has no session message at all.
    assert fit_files - with_summary == {"fr35-run-damaged.fit"}


def table(paths: list[Path]) -> str:
    """Markdown table: our figures / the device's, per session imported."""

    def f(x: float | None, digits: int = 1) -> str:
        return "–" if x is None else f"{x:.{digits}f}"

    rows = ["| file | session | distance m | avg HR bpm | avg cadence spm | timer s |",
            "|---|---|---|---|---|---|"]
    for path in paths:
        try:
            acts = read_fit(path, athlete="ann")
        except Exception as exc:  # the damaged file: show the error and the salvaged prefix
            rows.append(f"| {path.name} | – | error: {str(exc).split(': ', 1)[1][:90]} | | | |")
            acts = read_fit(path, athlete="ann", salvage=True)
        for a in acts:
            s, t = a.summary, a.totals
            assert t is not None
            rows.append(
                f"| {path.name} | {a.session_index} {a.sport} "
                f"| {f(t.distance_m)} / {f(s.total_distance_m if s else None)} "
                f"| {f(t.avg_heart_rate_bpm)} / {f(s.avg_heart_rate_bpm if s else None, 0)} "
                f"| {f(t.avg_cadence_spm)} / {f(s.avg_cadence_spm if s else None)} "
                f"| {f(t.timer_time_s)} / {f(s.total_timer_time_s if s else None)} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]] or sorted(CORPUS.glob("*.fit"))
    print(table(args))
