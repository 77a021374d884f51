"""The HTML report of the full-day scenario: content checked against the recorded day, then
opened in headless Chromium (Debian's package) with no console errors and no network requests."""

from __future__ import annotations

import json
import re
import shutil

from playwright.async_api import async_playwright

from cli.scenarios import ui_workflow, write_report
from protocol.contract import risk_workflow_id
from protocol.messages import RiskResult

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


async def full_day(client, scenario_runs, tmp_path_factory):
    report, _ = await scenario_runs["full_day"]
    result = await client.get_workflow_handle(risk_workflow_id(report.account), result_type=RiskResult).result()
    path = await write_report(client, report, tmp_path_factory.mktemp("reports"))
    return report, result, path


async def test_report_content_matches_the_recorded_day(client, scenario_runs, tmp_path_factory):
    report, result, path = await full_day(client, scenario_runs, tmp_path_factory)
    page = path.read_text()
    data = json.loads(re.search(r"<script type='application/json' id='chart-data'>(.*?)</script>", page, re.S).group(1))
    assert data["time"] == [d.exchange_time for d in result.decisions]
    assert data["gross_pct"] == [round(d.gross_pct, 6) for d in result.decisions]
    assert data["potential_pct"] == [round(d.potential_pct, 6) for d in result.decisions]
    assert data["tolerance_pct"] == [d.tolerance_pct for d in result.decisions]
    assert data["mode"] == [d.mode.value for d in result.decisions]
    assert set(data["mode"]) >= {"NORMAL", "SOFT_DERISK", "HARD_DERISK"} and data["hard_cap_pct"] == 130
    assert len(data["intents"]) == len(result.intents) > 0 and len(data["fills"]) == len(result.fills) > 0
    assert page.count("<svg") == 1 and "<img" not in page and "<link" not in page and "src=" not in page
    for intent_id, outcome in result.outcomes.items():  # every order, with its final state and a UI link
        row = re.search(rf"<tr><td><a href='{re.escape(ui_workflow(intent_id))}'>{re.escape(intent_id)}</a></td>.*?</tr>", page)
        assert row and f"<td>{outcome.state.value}</td>" in row.group(0), intent_id
    assert "SOFT_DERISK" in page and "HARD_DERISK" in page and "PASSED" in page
    assert f"<code id='run-digest'>{report.digest}</code>" in page and report.digest == result.digest  # the run's fingerprint
    assert all(f"<td>{group}</td>" in page for group in result.final_exposure.group_exposure)


async def test_report_renders_offline_in_headless_chromium(client, scenario_runs, tmp_path_factory):
    _, _, path = await full_day(client, scenario_runs, tmp_path_factory)
    console_errors, requests = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = await browser.new_page()
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        await page.goto(path.as_uri())
        await page.wait_for_load_state("networkidle")
        box = await page.locator("svg").first.bounding_box()
        rows = await page.locator("table tr").count()
        await browser.close()
    assert console_errors == []
    assert requests == [path.as_uri()], f"unexpected requests: {requests}"
    assert box and box["width"] > 500 and box["height"] > 200
    assert rows > 30
