"""The ward's page at the hours a ward uses it, in a real browser (Debian's chromium, headless):
a scripted ward of seven beds (tests/rigs/ward_day.py: a diligent patient, one who ignores the
prompts, a discharge, a re-admission, a clock moved, a bad morning, an old download) at 07:00,
12:00, just after the 14:05 discharge, and 19:00. Each page is made by the command, as a nurse
makes it; the browser's DOM gives the attention list, its order and its words; and at 1280 px no
unit id wraps. ``tools/ward_screenshots.py`` keeps the four pictures in docs/."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from tests.report.test_report_browser import CHROMIUM, chromium
from tests.rigs import ward_day as wd
from tests.rigs.cli import run

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")

# Hour: (headline, [(bed, reasons in words)] worst first, the beds needing nothing after them in order).
EXPECTED = {
    "07:00": ("7 beds; 1 needs attention (1 missed sessions)",
              [("bed02", ["missed 12 of 13 yesterday; none done since yesterday 19:04"])],
              ["bed01", "bed03", "bed04", "bed05", "bed06", "bed07"]),
    "12:00": ("7 beds; 3 need attention (2 missed sessions, 1 clock)",
              [("bed02", ["missed 8 of 9 yesterday, 4 of 4 today; none done since yesterday 19:04"]),
               ("bed06", ["missed 4 of 4 today; none done since yesterday 20:04"]),
               ("bed05", ["clock moved forward 2.0 h at 09:12: check the times around it"])],
              ["bed01", "bed03", "bed04", "bed07"]),
    "14:10": ("7 beds; 4 need attention (2 missed sessions, 1 clock, 1 old record); 1 empty",
              [("bed02", ["missed 5 of 6 yesterday, 6 of 6 today; none done since yesterday 19:04"]),
               ("bed06", ["missed 4 of 7 today; last one done at 14:04"]),
               ("bed05", ["clock moved forward 2.0 h at 09:12: check the times around it"]),
               ("bed07", ["no record since yesterday 12:03: how this bed is doing now is unknown"])],
              ["bed01", "bed03", "bed04"]),
    "19:00": ("7 beds; 4 need attention (2 missed sessions, 1 clock, 1 old record); 1 empty",
              [("bed02", ["missed 1 of 2 yesterday, 11 of 11 today; none done since yesterday 19:04"]),
               ("bed06", ["missed 4 of 11 today; last one done at 18:04"]),
               ("bed05", ["clock moved forward 2.0 h at 09:12: check the times around it"]),
               ("bed07", ["no record since yesterday 12:03: how this bed is doing now is unknown"])],
              ["bed01", "bed03", "bed04"]),
}

MEASURE = """<script>
document.title = JSON.stringify([...document.querySelectorAll("span.unit")].map(
  e => [e.textContent, e.getClientRects().length]));
</script>"""


def page_at(tmp: Path, hm: str) -> Path:
    inputs = wd.write(tmp / "in", hm)
    out = tmp / f"ward-{hm.replace(':', '')}.html"
    r = run("ward", *map(str, inputs), "-o", str(out), "--as-of", wd.as_of(hm).isoformat())
    assert r.returncode == 0, r.stderr
    return out


def rows_of(dom: str) -> list[tuple[str, list[str]]]:
    body = dom.split("<tbody>")[1].split("</tbody>", maxsplit=1)[0]
    out = []
    for tr in body.split("<tr")[1:]:
        unit = re.search(r'<span class="unit">([^<]*)</span>', tr)
        assert unit is not None
        why = tr.split('<td class="why">')[1].split("</td>")[0]
        out.append((unit.group(1), [html.unescape(x) for x in re.findall(r"<li>(.*?)</li>", why)]))
    return out


@pytest.mark.parametrize("hm", wd.TIMES)
def test_the_page_tells_the_truth_at_this_hour(hm: str, tmp_path: Path) -> None:
    page = page_at(tmp_path, hm)
    dom = chromium(tmp_path, page, "--dump-dom").stdout
    headline, attention, calm = EXPECTED[hm]
    summary = html.unescape(re.sub(r"<[^>]+>", "", dom.split('<p class="summary">')[1].split("</p>")[0]))
    assert summary == headline + "."
    rows = rows_of(dom)
    assert rows[: len(attention)] == attention
    assert [u for u, _ in rows[len(attention):]] == calm and all(not w for _, w in rows[len(attention):])
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    if hm in ("14:10", "19:00"):
        assert "empty since 14:05: episode E3 discharged" in " ".join(text.split())
    else:
        assert "E3" in text and "empty" not in text.split("<tbody>")[-1]
    if hm in ("07:00", "12:00"):
        # An old record that is not yet stale does not speak for the hours after it.
        assert "done up to yesterday 12:03; not known since (no newer record)" in " ".join(text.split())
    # The re-admitted bed: the new patient only; the last patient's misses are not held against it.
    assert ("E4B" in text and "admitted yesterday 15:00" in " ".join(text.split())) or hm == "19:00"


@pytest.mark.parametrize("hm", ["07:00", "14:10"])
def test_no_unit_id_wraps_at_1280_px(hm: str, tmp_path: Path) -> None:
    page = page_at(tmp_path, hm)
    # A copy with a script that measures each unit id's line boxes (the page itself runs no script).
    probe = page.with_name("probe.html")
    probe.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
                     .replace("</body>", MEASURE + "</body>"))
    dom = chromium(tmp_path, probe, "--window-size=1280,900", "--dump-dom").stdout
    measured = json.loads(html.unescape(dom.split("<title>")[1].split("</title>")[0]))
    assert len(measured) == 7 and all(lines == 1 for _, lines in measured), measured
    shot = tmp_path / "ward.png"
    chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.stat().st_size > 20_000


def test_the_pictures_in_the_docs_are_of_these_pages() -> None:
    from tests.conftest import ROOT

    for hm in wd.TIMES:
        shot = ROOT / "docs" / f"ward-{hm.replace(':', '')}.png"
        assert shot.is_file() and shot.stat().st_size > 20_000, f"run tools/ward_screenshots.py ({shot.name})"


def test_each_ward_sets_how_far_back_attention_looks(tmp_path: Path) -> None:
    """The ward's config file: since the handover before the last one, instead of the last 24 h."""
    inputs = wd.write(tmp_path / "in", "07:00")
    conf = tmp_path / "ward7.toml"
    conf.write_text('[unit]\nid = "ward7"\n[ward]\nhandovers = ["07:00", "19:00"]\nstale_after_hours = 12\n')
    out = tmp_path / "w.html"
    r = run("ward", *map(str, inputs), "-o", str(out), "--as-of", wd.as_of("07:00").isoformat(), "--config", str(conf))
    assert r.returncode == 0, r.stderr
    # At 07:00 the night shift just handed over: since yesterday 19:00.
    assert "bed02: missed 1 of 2 yesterday; none done since yesterday 19:04" in r.stdout
    assert "bed07: no record since yesterday 12:03" in r.stdout            # 19 h old: past this ward's 12 h
    assert "since Tue 1 Dec 2026 19:00" in out.read_text()
    # An option on the command line wins over the file.
    r = run("ward", *map(str, inputs), "-o", str(out), "--as-of", wd.as_of("07:00").isoformat(), "--config", str(conf),
            "--window", "24")
    assert "bed02: missed 12 of 13 yesterday" in r.stdout
    r = run("ward", *map(str, inputs), "-o", str(out), "--window", "12", "--handovers", "07:00")
    assert r.returncode == 2 and "not both" in r.stderr
    conf.write_text('[ward]\nhandovers = ["7am"]\n')
    r = run("ward", *map(str, inputs), "-o", str(out), "--config", str(conf))
    assert r.returncode == 2 and "[ward] handovers #1: must be a 24-hour time" in r.stderr
