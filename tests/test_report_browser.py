"""The report in a real browser: Debian's chromium driven by Playwright, from file://, offline.

Playwright cannot download its own browsers here, so it drives /usr/bin/chromium
(.ci/setup.d/20-chromium.sh installs it).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.report import report_for_leaderboard
from harness.suite import load_leaderboard, run_suite
from tests._suite_support import EVIL, register, small_task, write_leaderboard

CHROMIUM = os.environ.get("PRICEBENCH_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"{CHROMIUM} not installed "
                                 "(.ci/setup.d/20-chromium.sh installs it)")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page that records every request it makes and every dialog it opens."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.requests, page.dialogs = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


@pytest.fixture(scope="module")
def course_report(tmp_path_factory, data_dir) -> Path:
    tmp = tmp_path_factory.mktemp("course")
    board = load_leaderboard(REPO / "leaderboards" / "course.yaml")
    result = run_suite(board, data_dir=data_dir, store=tmp / "runs", only=["reference:*"], echo=lambda _: None)
    assert not result.failures
    return report_for_leaderboard(board, out_dir=tmp / "course", data_dir=data_dir, store=tmp / "runs").parent


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(f"{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent.trim())")


def test_leaderboard_in_chromium(page, course_report, tmp_path):
    page.goto((course_report / "index.html").as_uri())
    board = "#board-amazon8"
    human = page.locator(f"{board} tbody tr", has_text="Human (course author)")
    assert human.locator("td.mae").inner_text() == "$126.55"
    assert "ref-human" in human.get_attribute("class")
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)

    before = _column(page, board, 1)
    page.click(f"{board} th:has-text('Hits')")
    hits = [float(h.rstrip("%")) for h in _column(page, board, 8)]
    assert hits == sorted(hits) and _column(page, board, 1) != before
    page.click(f"{board} th:has-text('Hits')")
    hits = [float(h.rstrip("%")) for h in _column(page, board, 8)]
    assert hits == sorted(hits, reverse=True)

    _chart_shows_every_row(page, board)

    human.locator("a").click()
    page.wait_for_load_state()
    assert "/runs/" in page.url
    assert page.locator("svg.scatter circle.pt").count() == 250
    assert page.locator("svg.scatter .identity").count() == 1
    assert page.locator("h1").inner_text().startswith("Human (course author)")
    page.fill("input.search", "Motorcraft")
    shown = page.eval_on_selector_all("#items tbody tr", "rows => rows.filter(r => r.style.display !== 'none').length")
    assert 0 < shown < 250
    page.screenshot(path=str(tmp_path / "run.png"), full_page=False)
    print(f"screenshots: {tmp_path}")

    assert page.requests, "no requests recorded at all"
    offline = [u for u in page.requests if not u.startswith(("file://", "data:"))]
    assert offline == [], f"network requests: {offline}"


def _chart_shows_every_row(page, board: str) -> None:
    """The chart above the table: one bar per ranked row, a whisker per row with a CI, and the two
    reference lines, drawn (not just present) where the human and the best frontier bars end."""
    chart = page.locator('figure.lb-chart[data-task="amazon8"] svg.leaderboard')
    assert chart.is_visible()
    rows = page.locator(f"{board} tbody tr").count()
    with_ci = sum(1 for ci in _column(page, board, 6) if ci != "—")
    assert rows > 10 and chart.locator("rect.lb-bar").count() == rows
    assert 0 < with_ci and chart.locator("path.lb-whisker").count() == with_ci
    bars = chart.locator("rect.lb-bar")
    assert all(bars.nth(k).bounding_box()["width"] > 0 for k in range(rows))
    labels = chart.locator(".lb-ref-label").all_text_contents()
    assert labels == ["human $126.55", "best frontier $48.52"]
    for group, label in (("human", "Human (course author)"), ("frontier", "GPT-4o-mini + RAG")):
        line = chart.locator(f"line.lb-ref-{group}").bounding_box()
        bar = chart.locator("g.lb-row", has=page.locator("title", has_text=label)).locator("rect").bounding_box()
        assert line["height"] > 100 and abs(line["x"] + line["width"] / 2 - (bar["x"] + bar["width"])) < 2


def test_hostile_title_renders_as_text(page, tmp_path, data_dir):
    register()
    task = small_task(tmp_path, data_dir, n=8, evil_title=True, name="evil")
    board = load_leaderboard(write_leaderboard(tmp_path / "board.yaml", f"""
name: evil
tasks: [{task}]
models:
  - {{model: "testonly:echo", options: {{suffix: "{EVIL}"}}}}
"""))
    assert not run_suite(board, data_dir=data_dir, store=tmp_path / "runs", echo=lambda _: None).failures
    index = report_for_leaderboard(board, out_dir=tmp_path / "r", data_dir=data_dir, store=tmp_path / "runs")
    page.goto(index.as_uri())
    page.locator("#board-evil a").first.click()
    page.wait_for_load_state()
    row = page.locator("#items tbody tr").first
    assert row.locator("td").nth(1).inner_text() == EVIL
    assert EVIL in row.locator("td").nth(2).inner_text()
    assert page.locator("img").count() == 0
    assert page.dialogs == []
    assert all(u.startswith("file://") for u in page.requests)


def test_base_model_selection_and_training_curve_in_chromium(page, course_report, tmp_path):
    """The course's recorded Llama 3.1 8B runs (4-bit base, QLoRA), labelled as a measured hf: run and
    a finetune: run with a training record: the nav reaches the selection page, whose fine-tuned row
    leads to a run page that draws the curve with the checkpoint's marker at its step."""
    from harness.report import report_for_store
    from harness.runs.store import read_json, write_json_atomic

    store = tmp_path / "runs"
    shutil.copytree(course_report.parent / "runs", store)
    curve = [{"step": s, "loss": 2.0 / s ** 0.3} for s in range(1, 101)]
    for row in curve[19::20]:
        row.update(eval_loss=1.4, eval_mae=80.0 - row["step"] / 10)
    labels = {"reference:llama-3.1-8b-base-4bit": ("hf:llama-3.1-8b", {}),
              "reference:llama-3.1-8b-qlora": ("finetune:course", {"training": {
                  "base": "hf:llama-3.1-8b", "recipe": "course", "checkpoint": 60, "train_s": 3000.0,
                  "curve": curve}})}
    for path in store.glob("*/manifest.json"):
        manifest = read_json(path)
        if manifest["model"] in labels:
            manifest["model"], manifest["info"] = labels[manifest["model"]]
            manifest["quant"] = "4bit"
            write_json_atomic(path, manifest)
    index = report_for_store(store=store, out_dir=tmp_path / "report")
    page.goto(index.as_uri())
    page.click("header nav a:has-text('Base models')")
    page.wait_for_load_state()
    rows = page.locator('section.selection[data-base="hf:llama-3.1-8b"] tbody tr')
    assert rows.count() == 2 and rows.nth(1).get_attribute("data-way") == "fine-tuned"
    assert "better" in rows.nth(1).locator("td.test").inner_text()       # the course's QLoRA beat its base
    rows.nth(1).locator("a").click()
    page.wait_for_load_state()
    loss = page.locator("section.training svg.curve").first
    assert loss.is_visible() and page.locator("section.training svg.curve").count() == 2
    line = loss.locator("polyline.curve-train").bounding_box()
    marker = loss.locator("g.curve-marker line").bounding_box()
    assert line["width"] > 100 and loss.locator("circle.curve-dot").count() == 5
    assert abs((marker["x"] - line["x"]) / line["width"] - 59 / 99) < 0.02    # step 60 of 1..100
    page.screenshot(path=str(tmp_path / "training.png"), full_page=True)
    assert all(u.startswith("file://") for u in page.requests)
