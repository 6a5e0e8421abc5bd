"""The MLflow and Prefect UIs as their users see them, in headless Chromium (Debian's chromium and chromedriver).

A small store made the way users make one: `rewarm serve --port P` (its own Prefect server, on a port that is not
4200) runs two retrains of its served deployment; `mlflow ui` serves the MLflow store. Every check opens a fresh
browser profile (both UIs remember choices in the browser's storage, so a shared profile passes after the first
page), waits for the rendered page (not the HTML shell) and has a paired case that breaks the view and must fail.
Screenshots go to the test's folder; the best ones are kept in docs/img/. The tier runs once, on the embedded
profile, and the run's summary prints its wall time (budget: 5 minutes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from flight_snapshots import small_month, write_config
from mlflow import MlflowClient
from services import Service
from waiting import start_server

from rewarm import links, registry
from rewarm.processes import free_port, stop_group

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NAME = "ui-model"
SETTLE_SECONDS = 45  # the longest a page may take to render on a busy 2-core machine


@pytest.fixture(scope="module")
def browser_available(stores) -> None:
    if stores.stack is not None:
        pytest.skip("the browser tier runs once, on the embedded profile: make test")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("REWARM_REQUIRE_BROWSER"):
            pytest.fail("Debian's chromium and chromium-driver are missing: apt-get install chromium chromium-driver")
        pytest.skip("no headless browser: apt-get install chromium chromium-driver (.ci/run does)")


@contextmanager
def fresh_browser() -> Iterator:
    """Headless Chromium with a profile of its own, removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as Driver

    profile = tempfile.mkdtemp(prefix="rewarm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1000"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Driver(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Page:
    """A rendered page while its browser is open: READY conditions read it."""

    driver: object
    text: str


@dataclass
class Seen:
    """What a check saw, read before its browser closed."""

    text: str
    hrefs: list[str]
    line_charts: dict[str, int]  # chart title -> lines drawn in it
    tables: list[str]


def look(url: str, ready: Callable[[Page], bool], shot: Path, clicks: tuple[str, ...] = ()) -> Seen:
    """Open URL in a fresh browser, click what CLICKS names in turn (a tab, a card) as a user does, and wait until
    READY says the page has rendered what decides the check (good or bad); keep a screenshot and return what is
    on the page. Fails naming the URL if it never renders."""
    from selenium.webdriver.common.by import By

    with fresh_browser() as driver:
        driver.get(url)
        deadline = time.monotonic() + SETTLE_SECONDS
        for label in clicks:
            while not (found := driver.execute_script(LABELLED, label)):
                if time.monotonic() > deadline:
                    driver.save_screenshot(str(shot))
                    raise AssertionError(f"nothing labelled {label!r} to click on {url} (screenshot {shot})")
                time.sleep(0.5)
            found[-1].click()
        while not ready(Page(driver, driver.find_element(By.TAG_NAME, "body").text)):
            if time.monotonic() > deadline:
                driver.save_screenshot(str(shot))
                text = driver.find_element(By.TAG_NAME, "body").text
                raise AssertionError(f"{url} never rendered (screenshot {shot}):\n{text[:1500]}")
            time.sleep(0.5)
        time.sleep(1.5)  # what loads after the first paint (charts, a tab's contents)
        driver.save_screenshot(str(shot))
        charts = {title: lines for title, lines in driver.execute_script(CHARTS)}
        return Seen(
            text=driver.find_element(By.TAG_NAME, "body").text,
            hrefs=[a.get_attribute("href") or "" for a in driver.find_elements(By.TAG_NAME, "a")],
            line_charts=charts,
            tables=[t.text for t in driver.find_elements(By.TAG_NAME, "table")],
        )


# The elements whose whole rendered text is LABEL (arguments[0]), outermost first.
LABELLED = "return Array.from(document.querySelectorAll('*')).filter(e => (e.innerText || '').trim() === arguments[0])"

# Each plotly chart on the page: the title of the card it sits in (its first line that is not a tick label), and
# how many of its traces are drawn as lines through two points or more.
CHARTS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(plot => {
  let card = plot, title = '';
  while (!title && card.parentElement) {
    card = card.parentElement;
    const first = (card.innerText || '').trim().split('\\n')[0].trim();
    if (first && isNaN(Number(first))) title = first;
  }
  const paths = Array.from(plot.querySelectorAll('path.js-line'));
  return [title, paths.filter(p => (p.getAttribute('d') || '').includes('L')).length];
});
"""


def keep(shot: Path, name: str) -> None:
    """Copy a screenshot worth showing to REWARM_SCREENSHOTS (docs/img when the docs' pictures are renewed)."""
    if os.environ.get("REWARM_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["REWARM_SCREENSHOTS"]) / name)


# --- the checks: each raises AssertionError when the view is wrong -----------------------------------------


def check_runs_view(url: str, run_names: list[str], shot: Path) -> None:
    """The link opens the experiment on its training runs (not the GenAI overview a fresh browser gets)."""
    genai = ("Usage", "Quality", "Tool calls")
    page = look(url, lambda p: all(n in p.text for n in run_names) or all(g in p.text for g in genai), shot)
    assert all(n in page.text for n in run_names), f"{url} did not show the runs {run_names}:\n{page.text[:800]}"


def check_model_page(url: str, shot: Path) -> None:
    """The registered model's page shows the champion alias on a version."""
    page = look(url, lambda p: "Version 1" in p.text or "@ champion" in p.text, shot)
    assert f"@ {registry.CHAMPION}" in page.text, f"no champion alias on {url}:\n{page.text[:800]}"


def check_version_links_to_run(url: str, run_id: str, shot: Path) -> None:
    """A version's page links to the run that trained it."""
    page = look(url, lambda p: "Registered At" in p.text and "Aliases" in p.text, shot)
    assert any(f"/runs/{run_id}" in h for h in page.hrefs), f"{url} has no link to run {run_id}"


def check_round_shows_its_version(url: str, model: str, version: int, shot: Path) -> None:
    """The round's parent run, which people open, lists the model it produced and links to its version."""
    page = look(url, lambda p: "About this run" in p.text and "Registered models" in p.text, shot)
    wanted = f"/models/{model}/versions/{version}"
    assert any(wanted in h for h in page.hrefs), f"{url} does not link to {model} v{version}:\n{page.text[:800]}"


def check_history_chart(url: str, section: str, chart: str, shot: Path) -> None:
    """The run draws CHART (in its SECTION, the metric key's prefix) as a line over rounds, not a bar."""
    page = look(url, lambda p: "Model metrics" in p.text and chart in p.text, shot)
    assert section in page.text, f"no {section} section on {url}"
    assert page.line_charts.get(chart, 0) > 0, f"no line chart {chart!r} on {url}: {page.line_charts}"


def check_decision_artifact(url: str, key: str, shot: Path) -> None:
    """The flow run's Artifacts tab lists the decision, which opens as a table, from a UI that reaches its own
    server (started on a port that is not 4200)."""
    page = look(url, lambda p: "holdout" in p.text, shot, ("Artifacts", key))
    assert "Can't connect to Server API" not in page.text, f"the Prefect UI cannot reach its server:\n{page.text}"
    assert any("holdout" in t and "shrink_perturb" in t for t in page.tables), f"no decision table from {url}"


# --- the store, made as users make it -------------------------------------------------------------------------


@dataclass
class Demo:
    folder: Path
    mlflow_ui: str
    prefect_ui: str
    status: str  # what `rewarm status` printed
    flow_runs: dict[str, str]  # flow run name -> id


@pytest.fixture(scope="module")
def demo(browser_available, tmp_path_factory: pytest.TempPathFactory, flights: pd.DataFrame) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("browser")
    home, landing = folder / "home", folder / "landing"
    landing.mkdir()
    config = write_config(folder, name=NAME)
    for month in (1, 2):
        small_month(flights, month, rows=900).to_parquet(landing / f"m{month}.parquet", index=False)
    mlflow_port, prefect_port = free_port(), free_port()
    # The stores are this home's alone: what earlier tests' open_store() left in os.environ (MLflow writes the
    # registry URI there) would send the served runs' registry elsewhere.
    leaky = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "REWARM_MLFLOW_UI_URL")
    env = {k: v for k, v in os.environ.items() if k not in leaky}
    env |= {"REWARM_HOME": str(home), "PREFECT_HOME": str(folder / "prefect"), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    env["REWARM_MLFLOW_UI_URL"] = f"http://127.0.0.1:{mlflow_port}"
    service = Service(config, env, "--port", str(prefect_port), "--no-watch")
    ui = None
    try:
        service.wait_for_line(f"retrain/{NAME}", timeout=180)
        api = f"http://127.0.0.1:{prefect_port}/api"
        runs = {}
        for month in (1, 2, 1):  # the third: m1 again, already processed, so its run makes no decision
            key = f"m{month}" if f"m{month}" not in runs else "again"
            runs[key] = _run_served(api, landing / f"m{month}.parquet")
        shown = subprocess.run(
            [sys.executable, "-m", "rewarm.cli", "status", "--config", str(config)],
            env=env | {"PREFECT_API_URL": api},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.returncode == 0, shown.stderr
        command = [sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1", "--port", str(mlflow_port)]
        command += ["--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}"]
        ui = start_server(command, folder / "mlflow-ui.log", env["REWARM_MLFLOW_UI_URL"], timeout=120)
        yield Demo(folder, env["REWARM_MLFLOW_UI_URL"], f"http://127.0.0.1:{prefect_port}", shown.stdout, runs)
    finally:
        if ui is not None:
            stop_group(ui, grace=0, reap=30)
        try:
            service.interrupt()
        finally:
            service.close()


def _run_served(api: str, snapshot: Path) -> str:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        run = run_deployment(f"retrain/{NAME}", parameters={"snapshot": str(snapshot)}, timeout=300)
    assert run.state.is_completed(), run.state
    return str(run.id)


@pytest.fixture(scope="module")
def client(demo: Demo) -> MlflowClient:
    """The demo's store, named explicitly: the process-wide tracking URI stays the other tests'."""
    uri = f"sqlite:///{demo.folder / 'home' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def printed_link(status: str, what: str) -> str:
    [line] = [x for x in status.splitlines() if x.strip().startswith(f"{what}:") and "http" in x]
    return line.split(": ", 1)[1].strip()


# --- the tests --------------------------------------------------------------------------------------------------


def test_the_runs_link_rewarm_prints_opens_on_the_runs(demo: Demo, client: MlflowClient, tmp_path: Path) -> None:
    url = printed_link(demo.status, "runs")
    assert url.startswith(demo.mlflow_ui)
    check_runs_view(url, ["retrain m1.parquet", "retrain m2.parquet"], tmp_path / "runs.png")

    broken = client.create_experiment("no-kind")  # no kind tag, and a link without the view: the GenAI overview
    client.create_run(broken, run_name="retrain x.parquet")
    with pytest.raises(AssertionError, match="did not show the runs"):
        check_runs_view(f"{demo.mlflow_ui}/#/experiments/{broken}", ["retrain x.parquet"], tmp_path / "broken.png")


def test_the_model_page_shows_the_champion_alias(demo: Demo, client: MlflowClient, tmp_path: Path) -> None:
    url = printed_link(demo.status, "model")
    check_model_page(url, tmp_path / "model.png")
    keep(tmp_path / "model.png", "mlflow-model-aliases.png")

    run = client.create_run(client.get_experiment_by_name(NAME).experiment_id, run_name="unaliased")
    client.create_registered_model("no-alias")
    client.create_model_version("no-alias", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_terminated(run.info.run_id)
    with pytest.raises(AssertionError, match="no champion alias"):
        check_model_page(links.model(demo.mlflow_ui, "no-alias"), tmp_path / "broken.png")


def test_a_version_links_to_its_run_and_the_round_to_its_version(
    demo: Demo, client: MlflowClient, tmp_path: Path
) -> None:
    champion = registry.current_version(client, NAME, registry.CHAMPION)
    version = client.get_model_version(NAME, str(champion))
    check_version_links_to_run(printed_link(demo.status, "champion"), version.run_id, tmp_path / "version.png")
    parent = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
    experiment = client.get_experiment_by_name(NAME).experiment_id
    check_round_shows_its_version(links.run(demo.mlflow_ui, experiment, parent), NAME, champion, tmp_path / "round.png")

    client.create_registered_model("no-run")  # a version registered from a path, with no run behind it
    client.create_model_version("no-run", str(demo.folder / "nowhere"))
    with pytest.raises(AssertionError, match="has no link to run"):
        check_version_links_to_run(links.version(demo.mlflow_ui, "no-run", 1), version.run_id, tmp_path / "b1.png")
    bare = client.create_run(experiment, run_name="retrain bare.parquet")  # a round whose outputs were not logged
    client.set_terminated(bare.info.run_id)
    with pytest.raises(AssertionError, match="does not link to"):
        check_round_shows_its_version(
            links.run(demo.mlflow_ui, experiment, bare.info.run_id), NAME, champion, tmp_path / "b2.png"
        )


def test_the_history_chart_draws_each_round(demo: Demo, client: MlflowClient, tmp_path: Path) -> None:
    url = printed_link(demo.status, "history")
    check_history_chart(url, "roc_auc", "champion_after", tmp_path / "history.png")
    keep(tmp_path / "history.png", "mlflow-history-chart.png")

    experiment = client.get_experiment_by_name(NAME).experiment_id
    [one_round] = client.search_runs(
        [experiment], "tags.`rewarm.snapshot` = 'm2.parquet' and tags.`rewarm.kind` = 'retrain'"
    )
    with pytest.raises(AssertionError, match="no line chart"):  # a round's own run: one point a metric, bars
        check_history_chart(
            links.chart(demo.mlflow_ui, experiment, one_round.info.run_id),
            "Model metrics",
            "holdout_roc_auc",
            tmp_path / "b.png",
        )


def test_the_flow_run_shows_the_decision_artifact(demo: Demo, tmp_path: Path) -> None:
    url = f"{demo.prefect_ui}/runs/flow-run/{demo.flow_runs['m2']}"
    check_decision_artifact(url, f"{NAME}-decision", tmp_path / "artifact.png")

    with pytest.raises(AssertionError, match=f"nothing labelled '{NAME}-decision'"):  # m1 again: no decision
        check_decision_artifact(
            f"{demo.prefect_ui}/runs/flow-run/{demo.flow_runs['again']}", f"{NAME}-decision", tmp_path / "b.png"
        )
