"""The typed command line: help on everything, typed lists and ranges, benchmark modes and their old flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command

from rewarm.cli import app, main


def one_error_line(err: str) -> str:
    """The single line the command printed on stderr, which must be an error line."""
    [line] = err.splitlines()
    assert line.startswith("rewarm: error: ")
    return line


def walk(command, path: str = "rewarm"):
    """Yield (path, command) for COMMAND and every command under it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    commands = dict(walk(get_command(app)))
    assert {"rewarm retrain", "rewarm benchmark zoo", "rewarm quarantine retry", "rewarm stack"} <= set(commands)
    for path, command in commands.items():
        assert (command.help or "").strip(), f"{path}: no help"
        for param in command.params:
            assert (getattr(param, "help", None) or "").strip(), f"{path} {param.name}: no help"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["retrain", "--strategies", "foo"], "foo: not a strategy; choose from shrink_perturb, warm, cold"),
        (["retrain", "--strategies", "warm,foo"], "foo: not a strategy; choose from shrink_perturb, warm, cold"),
        (["retrain", "--window", "-1"], "'--window'"),
        (["demo", "--months", "13"], "'--months'"),
        (["demo", "--months", "0"], "'--months'"),
        (["benchmark", "--months", "1"], "'--months'"),
        (["benchmark", "sweep", "--seeds", "0"], "'--seeds'"),
        (["benchmark", "--shrink-grid", "0.2,big"], "comma-separated numbers please"),
        (["benchmark", "sweep", "--perturb-grid", "x"], "comma-separated numbers please"),
        (["benchmark", "zoo", "--max-rows", "5"], "'--max-rows'"),
        (["deploy"], "Missing option '--pool'"),
        (["retrain", "--no-such-option"], "--no-such-option"),
        (["quarantine"], "Missing command"),
        (["benchmark", "--seeds", "2", "sweep"], "--seeds before `sweep`: put a mode's options after it"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert says in one_error_line(capsys.readouterr().err)


def test_two_old_mode_flags_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "--loop", "--overhead", "--quick"]) != 0
    line = one_error_line(capsys.readouterr().err)
    assert "--loop and --overhead" in line and "one benchmark at a time" in line


def test_an_unknown_zoo_dataset_is_one_line_in_the_zoo_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["benchmark", "zoo", "--datasets", "nope", "--out", str(tmp_path), "--no-mlflow"]
    assert main(argv) != 0
    line = one_error_line(capsys.readouterr().err)
    assert "no zoo dataset named ['nope']" in line and "iris" in line


def test_help_is_answered_with_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"--{mode}" in out for mode in ("sweep", "loop", "overhead", "scaling", "zoo"))
    assert all(mode in out for mode in ("run", "sweep", "loop", "overhead", "scaling", "zoo"))
    assert main(["quarantine", "retry", "-h"]) == 0  # -h, as argparse had it
    assert "its name as `rewarm quarantine list` shows it" in capsys.readouterr().out


# The benchmarks themselves train for minutes (tests/test_benchmark.py and test_zoo_benchmark.py run them for
# real); what is tested here is which one the command line picks and with what. So each benchmark module's own
# seam, its run function, which the command looks up when it runs, records its call instead.


@pytest.fixture
def no_config_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder without rewarm.toml: the benchmarks fall back on the built-in demo settings."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("mode", ["loop", "overhead", "scaling"])
def test_old_measure_flags_run_the_mode(
    mode: str, no_config_here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []

    def measured(settings, folder: Path, quick: bool = False) -> str:
        calls.append((settings.model.name, folder, quick))
        return f"{mode} measured"

    monkeypatch.setattr(f"rewarm.benchmarks.{mode}.run", measured)
    out = no_config_here / "out"
    assert main(["benchmark", f"--{mode}", "--quick", "--out", str(out)]) == 0
    assert main(["benchmark", mode, "--quick", "--out", str(out)]) == 0
    assert main(["benchmark", mode, "--out", str(out)]) == 0
    assert calls == [("flight-delay", out, True), ("flight-delay", out, True), ("flight-delay", out, False)]
    assert capsys.readouterr().out.count(f"{mode} measured") == 3


def fake_replay(calls: list):
    """A stand-in for rewarm.benchmarks.run.run that records its options and writes the report it reads."""

    def replay(settings, options, folder: Path, log_mlflow: bool = True) -> tuple[None, list[Path]]:
        calls.append((options, log_mlflow))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.md").write_text("## monthly\n")
        return None, [folder / "report.md"]

    return replay


def test_old_sweep_flag_and_plain_benchmark_run_the_modes(
    no_config_here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    monkeypatch.setattr("rewarm.benchmarks.run.run", fake_replay(calls))
    out = ["--out", str(no_config_here / "out")]
    grids = ["--shrink-grid", "0.5,0.7", "--perturb-grid", "0,0.01"]
    assert main(["benchmark", "--sweep", *grids, "--seeds", "2", "--months", "4", "--no-mlflow", *out]) == 0
    assert main(["benchmark", "sweep", *grids, "--seeds", "2", "--months", "4", "--no-mlflow", *out]) == 0
    assert calls[0] == calls[1]
    options, log_mlflow = calls[0]
    assert options.sweep and options.shrink_grid == (0.5, 0.7) and options.perturb_grid == (0.0, 0.01)
    assert (options.seeds, options.months, log_mlflow) == (2, 4, False)

    assert main(["benchmark", "--quick", "--small-rows", "0", *out]) == 0
    assert main(["benchmark", "run", "--quick", "--small-rows", "0", *out]) == 0
    assert calls[2] == calls[3]
    options, log_mlflow = calls[2]
    assert not options.sweep and options.months == 6 and options.small_rows is None and log_mlflow


def test_old_zoo_flag_runs_the_zoo_mode(no_config_here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def zoo(folder: Path, names, seeds: int = 1, max_rows=None, log_mlflow: bool = True, architecture=None):
        calls.append((folder, names, seeds, max_rows, log_mlflow, architecture))
        return fake_replay([])(None, None, folder)

    monkeypatch.setattr("rewarm.benchmarks.zoo_bench.run", zoo)
    out = no_config_here / "out"
    assert main(["benchmark", "--zoo", "--datasets", "iris,titanic", "--max-rows", "90", "--out", str(out)]) == 0
    assert (
        main(["benchmark", "zoo", "--datasets", "iris", "--datasets", "titanic", "--max-rows", "90", "--out", str(out)])
        == 0
    )
    assert main(["benchmark", "zoo", "--datasets", "iris", "--architecture", "tabm", "--out", str(out)]) == 0
    assert calls == [(out, ["iris", "titanic"], 3, 90, True, None)] * 2 + [(out, ["iris"], 3, None, True, "tabm")]


def test_stack_calls_the_stack_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting PostgreSQL, MLflow and Prefect is tests/test_production.py's; here, what the command passes on."""
    calls = []
    monkeypatch.setattr("rewarm.stack.serve_stack", lambda *args: calls.append(args) or 0)
    assert main(["stack", "--folder", str(tmp_path), "--pool", "p"]) == 0
    assert main(["stack", "--folder", str(tmp_path), "--artifacts", "s3://bucket/path"]) == 0
    assert calls == [(tmp_path, "p", None), (tmp_path, "rewarm", "s3://bucket/path")]
