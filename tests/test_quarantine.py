"""Rejected snapshots in quarantine (rewarm/quarantine.py), announced paths (rewarm/landing.py) and
`rewarm quarantine list|retry`."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from flight_snapshots import write_config

from rewarm import quarantine
from rewarm.cli import main
from rewarm.config import DataSection
from rewarm.errors import RewarmError, SnapshotRejected
from rewarm.landing import check_announced, is_snapshot_name, safe_name
from rewarm.snapshots import read_raw, validate

SPEC = DataSection(target="late", task="binary", numeric=("dist", "temp"), categorical=("carrier",), min_rows=10)
ROWS = "".join(f"{100 + 10 * i},{20 + i}.5,{'AA' if i % 2 else 'UA'},{i % 2}\n" for i in range(1, 12))
BAD = b"dist,temp,carrier,late\n100,warm,AA,0\n" + ROWS.encode()  # one word in a numeric column
WORSE = b"dist,temp,carrier,late\n100,,AA,0\n" + ROWS.encode()  # one null


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rejection(uri: str, data: bytes) -> SnapshotRejected:
    """The SnapshotRejected that validating DATA, landed as URI, raises."""
    with pytest.raises(SnapshotRejected) as info:
        validate(read_raw(data, uri, SPEC), SPEC, uri)
    return info.value


def reject(landing: Path, quarantined: Path, name: str, data: bytes) -> quarantine.Record:
    """Land DATA as NAME, then quarantine it the way a retrain does."""
    landing.mkdir(exist_ok=True)
    path = landing / name
    path.write_bytes(data)
    return quarantine.put(str(quarantined), str(path), sha(data), "flights-test", rejection(str(path), data))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(landing, quarantine), side by side as data.quarantine's default puts them."""
    return tmp_path / "landing", tmp_path / "quarantine"


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh folder in fsspec's (process-wide) memory filesystem, removed afterwards."""
    url = f"memory://rewarm-quarantine-{uuid.uuid4().hex}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under FOLDER, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- put, records, holds ------------------------------------------------------------------------------


def test_put_moves_the_file_and_writes_its_reason_beside_it(folders: tuple[Path, Path]) -> None:
    landing, quarantined = folders
    record = reject(landing, quarantined, "jan.csv", BAD)

    assert not (landing / "jan.csv").exists()
    assert (quarantined / "jan.csv").read_bytes() == BAD
    assert sorted(tree(quarantined)) == ["jan.csv", "jan.csv.reason.json"]
    reason = json.loads((quarantined / "jan.csv.reason.json").read_text())
    assert reason == record.to_dict()
    assert (reason["name"], reason["landed_as"], reason["kind"]) == ("jan.csv", "jan.csv", "dtype")
    assert (reason["sha256"], reason["model"], reason["size"]) == (sha(BAD), "flights-test", len(BAD))
    assert reason["source"] == str(landing / "jan.csv")
    assert reason["location"] == str(quarantined / "jan.csv")
    assert reason["reason"].startswith(f"{landing / 'jan.csv'}: column 'temp' must hold numbers but 1 row(s)")
    assert [(p["kind"], p["column"], p["count"]) for p in reason["problems"]] == [("dtype", "temp", 1)]
    assert quarantine.records(str(quarantined)) == [record]
    assert quarantine.holds(str(quarantined), sha(BAD))
    assert not quarantine.holds(str(quarantined), sha(WORSE))


def test_records_of_a_quarantine_not_made_yet_are_none(tmp_path: Path) -> None:
    assert quarantine.records(str(tmp_path / "quarantine")) == []
    assert not (tmp_path / "quarantine").exists()


def test_a_second_file_of_the_same_name_gets_its_hash_in_its_name(folders: tuple[Path, Path]) -> None:
    landing, quarantined = folders
    first = reject(landing, quarantined, "jan.csv", BAD)
    before = tree(quarantined)
    second = reject(landing, quarantined, "jan.csv", WORSE)

    assert second.name == f"jan-{sha(WORSE)[:12]}.csv"
    assert (second.landed_as, second.kind) == ("jan.csv", "null")
    assert (quarantined / second.name).read_bytes() == WORSE
    assert {k: v for k, v in tree(quarantined).items() if k in before} == before  # the first is untouched
    held = {r.name: r for r in quarantine.records(str(quarantined))}
    assert held == {"jan.csv": first, second.name: second}


def test_a_reason_file_without_its_snapshot_is_not_listed(folders: tuple[Path, Path]) -> None:
    landing, quarantined = folders
    kept = reject(landing, quarantined, "jan.csv", BAD)
    # A crash between the reason file and the move: feb.csv's reason is written, feb.csv is still landed.
    orphan = {**kept.to_dict(), "name": "feb.csv", "landed_as": "feb.csv", "location": str(quarantined / "feb.csv")}
    (quarantined / "feb.csv.reason.json").write_text(json.dumps(orphan))
    assert quarantine.records(str(quarantined)) == [kept]

    again = reject(landing, quarantined, "feb.csv", WORSE)  # rejected again: written again, same name
    assert again.name == "feb.csv"
    assert json.loads((quarantined / "feb.csv.reason.json").read_text())["sha256"] == sha(WORSE)
    assert sorted(r.name for r in quarantine.records(str(quarantined))) == ["feb.csv", "jan.csv"]


def test_a_sanitised_name_is_still_a_snapshot_name() -> None:
    assert quarantine.sanitise("jan..v2.csv") == "jan.v2.csv"
    assert quarantine.sanitise("a\\..\\b.parquet") == "a_._b.parquet"
    assert is_snapshot_name(quarantine.sanitise("jan..csv"))  # retry would put it back under this name


# ---- retry --------------------------------------------------------------------------------------------


def test_retry_puts_it_back_under_the_name_it_landed_as(folders: tuple[Path, Path]) -> None:
    landing, quarantined = folders
    reject(landing, quarantined, "jan.csv", BAD)
    second = reject(landing, quarantined, "jan.csv", WORSE)

    target = quarantine.retry(str(quarantined), str(landing), second.name)

    assert target == str(landing / "jan.csv")
    assert (landing / "jan.csv").read_bytes() == WORSE
    assert not (quarantined / second.name).exists()
    [retried] = (quarantined / "retried").iterdir()
    assert retried.name.startswith(f"{second.name}.") and retried.name.endswith(".reason.json")
    assert json.loads(retried.read_text())["sha256"] == sha(WORSE)
    assert [r.name for r in quarantine.records(str(quarantined))] == ["jan.csv"]
    assert not quarantine.holds(str(quarantined), sha(WORSE))


def test_retry_refuses_when_landing_holds_that_name(folders: tuple[Path, Path]) -> None:
    landing, quarantined = folders
    reject(landing, quarantined, "jan.csv", BAD)
    (landing / "jan.csv").write_bytes(WORSE)  # a new jan.csv landed meanwhile
    before = tree(landing.parent)

    with pytest.raises(RewarmError, match="exists already; move or rename it first") as info:
        quarantine.retry(str(quarantined), str(landing), "jan.csv")
    assert str(info.value).startswith(str(landing / "jan.csv"))
    assert tree(landing.parent) == before


def test_retry_refuses_a_name_not_in_quarantine(folders: tuple[Path, Path]) -> None:
    landing, quarantined = folders
    reject(landing, quarantined, "jan.csv", BAD)
    before = tree(landing.parent)

    with pytest.raises(RewarmError) as info:
        quarantine.retry(str(quarantined), str(landing), "feb.csv")
    assert str(info.value) == f"feb.csv: not in quarantine at {quarantined}; quarantined now: ['jan.csv']"
    assert tree(landing.parent) == before


@pytest.mark.parametrize("name", ["../jan.csv", "sub/jan.csv", "sub\\jan.csv", "..", "jan..csv", ""])
def test_names_that_are_not_plain_file_names_are_refused(folders: tuple[Path, Path], name: str) -> None:
    landing, quarantined = folders
    reject(landing, quarantined, "jan.csv", BAD)
    before = tree(landing.parent)

    with pytest.raises(RewarmError, match="not a plain file name"):
        safe_name(name)
    with pytest.raises(RewarmError, match="not a plain file name"):
        quarantine.retry(str(quarantined), str(landing), name)
    assert tree(landing.parent) == before


# ---- another filesystem -------------------------------------------------------------------------------


def test_put_records_and_retry_on_an_fsspec_memory_filesystem(memory_root: str) -> None:
    fs = fsspec.filesystem("memory")
    landing = f"{memory_root}/landing"
    location = DataSection(landing=landing, **SPEC.model_dump(exclude={"landing"})).quarantine_location
    assert location == f"{memory_root}/quarantine"
    fs.pipe(f"{landing}/jan.csv", BAD)

    record = quarantine.put(location, f"{landing}/jan.csv", sha(BAD), "m", rejection(f"{landing}/jan.csv", BAD))
    assert not fs.exists(f"{landing}/jan.csv")
    assert fs.cat(f"{location}/jan.csv") == BAD
    assert (record.location, record.size, record.kind) == (f"{location}/jan.csv", len(BAD), "dtype")
    assert quarantine.records(location) == [record]
    assert quarantine.holds(location, sha(BAD))

    assert quarantine.retry(location, landing, "jan.csv") == f"{landing}/jan.csv"
    assert fs.cat(f"{landing}/jan.csv") == BAD
    assert quarantine.records(location) == []
    assert len(fs.ls(f"{location}/retried")) == 1


@pytest.mark.parametrize(
    ("landing", "expected"),
    [
        ("/srv/data/landing", "/srv/data/quarantine"),
        ("/srv/data/landing/", "/srv/data/quarantine"),
        ("memory://x/landing", "memory://x/quarantine"),
        ("s3://bucket/feeds/landing/", "s3://bucket/feeds/quarantine"),
    ],
)
def test_the_quarantine_defaults_to_a_sibling_of_the_landing_folder(landing: str, expected: str) -> None:
    data = DataSection(landing=landing, **SPEC.model_dump(exclude={"landing", "quarantine"}))
    assert data.quarantine_location == expected
    chosen = DataSection(**{**data.model_dump(), "quarantine": "/elsewhere/held"})
    assert chosen.quarantine_location == "/elsewhere/held"


# ---- announced snapshots ------------------------------------------------------------------------------


def test_an_announced_file_directly_inside_landing_is_accepted(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    assert check_announced(str(landing / "jan.csv"), str(landing)) == str(landing / "jan.csv")


@pytest.mark.parametrize(
    "announced",
    ["jan.csv", "landing/../landing/jan.csv", "landing/sub/jan.csv", "landing-old/jan.csv", "landing/.."],
    ids=["outside", "dot-dot-inside", "subfolder", "sibling-prefix", "parent"],
)
def test_an_announced_file_anywhere_else_is_refused(tmp_path: Path, announced: str) -> None:
    landing = tmp_path / "landing"
    uri = f"{tmp_path}/{announced}"
    with pytest.raises(RewarmError) as info:
        check_announced(uri, str(landing))
    assert str(info.value) == (
        f"{uri}: announced snapshots must be files directly inside data.landing ({landing}); not retrained"
    )


# ---- the command --------------------------------------------------------------------------------------


def test_cli_list_shows_name_kind_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    record = reject(tmp_path / "landing", tmp_path / "quarantine", "jan.csv", BAD)

    assert main(["quarantine", "list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"quarantine {tmp_path / 'quarantine'}: 1 snapshot(s), oldest first\n")
    assert f"jan.csv  [dtype]  {record.quarantined_at}  {len(BAD)} bytes\n  {record.reason}\n" in out
    assert "rewarm quarantine retry NAME" in out

    assert main(["quarantine", "list", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == [record.to_dict()]


def test_cli_list_of_an_empty_quarantine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["quarantine", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out == f"quarantine {tmp_path / 'quarantine'}: empty\n"
    assert main(["quarantine", "list", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_retry_moves_it_back_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    reject(tmp_path / "landing", tmp_path / "quarantine", "jan.csv", BAD)

    assert main(["quarantine", "retry", "jan.csv", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"jan.csv is back in the landing location as {tmp_path / 'landing' / 'jan.csv'}" in out
    assert (tmp_path / "landing" / "jan.csv").read_bytes() == BAD
    assert not (tmp_path / "quarantine" / "jan.csv").exists()


def test_cli_retry_of_an_unknown_name_lists_the_quarantine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    reject(tmp_path / "landing", tmp_path / "quarantine", "jan.csv", BAD)

    assert main(["quarantine", "retry", "feb.csv", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"rewarm: error: feb.csv: not in quarantine at {tmp_path / 'quarantine'}; quarantined now: ['jan.csv']\n"
    )
    assert (tmp_path / "quarantine" / "jan.csv").read_bytes() == BAD
