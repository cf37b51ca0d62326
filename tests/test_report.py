"""The tour registry, run_tour's report files and error policy, the HTML page and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyquirk import __version__
from pyquirk.cli import main
from pyquirk.report import tour
from pyquirk.report.tour import (Section, SectionOutput, Table, TourError, UnknownSectionError,
                                 register_section, run_tour, unregister_section)


def _line_section(ctx):
    from matplotlib.figure import Figure
    fig = Figure()
    fig.add_subplot().plot(np.arange(4) ** 2)
    ctx.figure("line", fig, caption="a `parabola` <b>")
    return SectionOutput(
        paragraphs=["Some <script>alert(1)</script> text with `code`.", "- one\n- two"],
        metrics={"acc": np.float32(0.75), "curve": np.arange(3), "quick": ctx.quick,
                 "init_seed": ctx.seeds.init},
        tables=[Table(["model", "acc"], [["mlp", 0.6812]], caption="Accuracies")])


def _failing_section(ctx):
    raise RuntimeError("kaboom in section")


@pytest.fixture
def fake_sections():
    """Register throw-away sections; remove them afterwards."""
    added = []

    def add(name, fn, order=1.0, title=None):
        register_section(Section(name, title or f"Fake {name} <&>", order, fn))
        added.append(name)

    yield add
    for name in added:
        unregister_section(name)


def test_tour_writes_index_and_results(tmp_path, fake_sections):
    fake_sections("zz-fake", _line_section, order=2)
    fake_sections("aa-fake", lambda ctx: SectionOutput(metrics={"n": 1}), order=1)
    summary = run_tour(tmp_path, quick=True, only=["zz-fake", "aa-fake"], seeds=7, progress=False)

    assert summary["order"] == ["aa-fake", "zz-fake"]        # by `order`, not by `only`
    assert (tmp_path / "figures" / "zz-fake-line.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc == json.loads(json.dumps(summary))
    sec = doc["sections"]["zz-fake"]
    assert sec["status"] == "ok" and sec["time_s"] >= 0
    assert sec["metrics"] == {"acc": 0.75, "curve": [0, 1, 2], "quick": True, "init_seed": 7}
    assert sec["figures"] == ["figures/zz-fake-line.png"]
    assert doc["seeds"] == {k: 7 for k in doc["seeds"]} and doc["quick"] is True
    assert doc["versions"]["pyquirk"] == __version__ and doc["failed"] == []

    page = (tmp_path / "index.html").read_text()
    assert 'id="s-zz-fake"' in page and 'href="#s-zz-fake"' in page
    assert "Fake zz-fake &lt;&amp;&gt;" in page
    assert '<img src="figures/zz-fake-line.png"' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<code>code</code>" in page and "<li>two</li>" in page
    assert "<caption>Accuracies</caption>" in page and "0.6812" in page
    assert "Seeds" in page and "Timings" in page and "Versions" in page


def test_failing_section_is_reported_and_raised_at_the_end(tmp_path, fake_sections):
    fake_sections("boom", _failing_section, order=1)
    fake_sections("after", _line_section, order=2)
    with pytest.raises(TourError, match="boom") as info:
        run_tour(tmp_path, only=["boom", "after"], progress=False)
    assert info.value.failed == ["boom"]
    assert isinstance(info.value.__cause__, RuntimeError)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["failed"] == ["boom"]
    assert doc["sections"]["boom"]["status"] == "error"
    assert "kaboom in section" in doc["sections"]["boom"]["error"]
    assert doc["sections"]["after"]["status"] == "ok"          # the tour went on
    page = (tmp_path / "index.html").read_text()
    assert "kaboom in section" in page and "1 section(s) failed" in page


def test_bad_section_output_is_an_error(tmp_path, fake_sections):
    fake_sections("notout", lambda ctx: {"acc": 1})
    fake_sections("badmetric", lambda ctx: SectionOutput(metrics={"x": object()}))
    with pytest.raises(TourError) as info:
        run_tour(tmp_path, only=["notout", "badmetric"], progress=False)
    assert info.value.failed == ["badmetric", "notout"]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert "expected SectionOutput" in doc["sections"]["notout"]["error"]
    assert "badmetric metrics" in doc["sections"]["badmetric"]["error"]


def test_unknown_section_raises_before_running(tmp_path):
    with pytest.raises(UnknownSectionError, match="nosuch"):
        run_tour(tmp_path / "r", only=["nosuch"], progress=False)
    assert not (tmp_path / "r").exists()


def test_registration_rules(fake_sections):
    fake_sections("dup", _line_section)
    register_section(Section("dup", "again", 1.0, _line_section))   # same function: a reload
    with pytest.raises(ValueError, match="already registered"):
        register_section(Section("dup", "other", 1.0, _failing_section))
    for bad in ("Bad", "tour", "has space", "", "1st"):
        with pytest.raises(ValueError, match="invalid section name"):
            register_section(Section(bad, "t", 1.0, _line_section))


def test_baseline_is_registered_from_section_modules():
    assert "pyquirk.report.baseline" in tour.SECTION_MODULES
    names = [s.name for s in tour.sections()]
    assert "baseline" in names


def test_figure_name_is_checked(tmp_path):
    ctx = tour.TourContext(tmp_path, False, tour.Seeds(), section="s")
    with pytest.raises(ValueError, match="figure name"):
        ctx.figure("../escape", None)


def test_cli_tour_only_fake(tmp_path, fake_sections):
    fake_sections("fake", _line_section)
    out = tmp_path / "rep"
    assert main(["tour", "--only", "fake", "--out", str(out), "--seed", "3", "--quick",
                 "--no-progress"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert list(doc["sections"]) == ["fake"] and doc["seeds"]["order"] == 3
    assert (out / "index.html").exists()


def test_cli_section_subcommand(tmp_path, fake_sections):
    fake_sections("fake", _line_section)
    fake_sections("boom", _failing_section)
    assert main(["fake", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "a" / "results.json").read_text())["order"] == ["fake"]
    assert main(["boom", "--out", str(tmp_path / "b"), "--no-progress"]) == 1


@pytest.mark.parametrize("argv", [["nosuch"], ["tour", "--only", "nosuch"], [],
                                  ["tour", "--seed", "-1"], ["tour", "--bogus"]])
def test_cli_usage_errors_exit_2_without_traceback(argv, tmp_path, capsys):
    assert main(argv + (["--out", str(tmp_path)] if argv[:1] == ["tour"] else [])) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_cli_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_baseline_models_shapes():
    from pyquirk.report.baseline import baseline_models
    models = baseline_models()
    assert models["mlp"].input_shape == (40,) and models["cnn"].input_shape == (1, 40)
    assert models["mlp"].n_params == 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    assert models["cnn"].n_params == (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (25 * 5 * 10 + 10)
