"""``seqnb doctor`` against the emulator: what it reports, its exit status, and that the token never shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seqnb
from seqnb.cli import main
from seqnb.emulator import EmulatorServer
from seqnb.ledger.facade import Ledger
from seqnb.ledger.schema import SCHEMA_VERSION
from seqnb.testing import FAST, emulator


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["doctor", *args])
    out, err = capsys.readouterr()
    return status, out + err


def test_doctor_reports_everything_and_exits_0(
    emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCOMFY_TOKEN", emu.token)
    ledger = Ledger(tmp_path / "runs.sqlite")
    client = seqnb.connect(emu.token, emu.base_url, ledger=ledger, download=False)
    client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=1)).wait(30)
    client.close()

    status, text = doctor(capsys, "--base-url", emu.base_url, "--ledger", str(ledger.path))
    assert status == 0, text
    assert emu.token not in text
    lines = {line.split()[1]: line for line in text.splitlines() if not line.startswith("result")}
    assert "from RUNCOMFY_TOKEN" in lines["token"] and lines["token"].startswith("ok")
    assert f"Model API {emu.base_url}/v1; account API {emu.base_url}" in lines["urls"]
    assert lines["model"].startswith("ok") and "the token is accepted" in lines["model"]
    assert "$0.04/image in the catalog, built-in USD 0.04 (same)" in lines["prices"]
    assert lines["schema"].startswith("ok")  # the emulator's own reference rules are followed, not drift
    assert "seedream-4.0-edit: at most 10 references, 4 rule(s) per image (width_pixels> 14" in lines["references"]
    assert lines["references"].count("[emulator catalog, fetched") == 2  # the live rules are the ones in use
    assert lines["balance"].startswith("ok") and "USD" in lines["balance"]
    assert "1 run," in lines["ledger"] and f"schema {SCHEMA_VERSION}" in lines["ledger"]
    assert "files" in lines["image"]
    assert f"seqnb {seqnb.__version__}" in lines["versions"] and "httpx" in lines["versions"]
    assert text.rstrip().endswith("result: ok")


def test_doctor_json_is_the_same_report_as_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulator(**FAST, prices={"seedream-4.0": "0.025"}, balance="3.50") as emu:
        monkeypatch.setenv("RUNCOMFY_TOKEN", emu.token)
        status, text = doctor(capsys, "--json", "--base-url", emu.base_url, "--ledger", str(tmp_path / "none.sqlite"))
    assert status == 0, text
    report = json.loads(text)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert list(checks) == [
        "token",
        "urls",
        "model api",
        "prices",
        "schema",
        "references",
        "balance",
        "ledger",
        "image cache",
        "versions",
    ]
    assert checks["token"]["details"] == {"source": "RUNCOMFY_TOKEN"}
    assert checks["prices"]["details"]["bytedance/seedream-4-0/sequential"]["catalog"] == "$0.025/image"
    assert checks["prices"]["details"]["bytedance/seedream-4-0/sequential"]["builtin"] == "USD 0.03"
    assert checks["balance"]["details"]["amount"] == "3.50" and checks["balance"]["details"]["currency"] == "USD"
    assert "USD 3.50" in checks["balance"]["summary"]  # one way to write money, in the text and in the data
    assert checks["ledger"]["status"] == "info" and "none yet" in checks["ledger"]["summary"]
    assert emu.token not in text


def test_a_wrong_token_exits_non_zero_and_is_never_printed(
    emu: EmulatorServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-token-d0ct0r-7f3a9"
    monkeypatch.setenv("RUNCOMFY_TOKEN", wrong)
    status, text = doctor(capsys, "--base-url", emu.base_url)
    assert status == 1
    assert wrong not in text
    assert "fail  model api" in text and "the token is refused" in text
    assert "the catalog refused the token; built-in USD 0.04" in text
    assert "fail  balance" in text
    assert "result: 2 problem(s): model api, balance" in text
    status, text = doctor(capsys, "--json", "--base-url", emu.base_url)
    assert status == 1 and json.loads(text)["ok"] is False and wrong not in text


def test_an_unreachable_account_api_and_a_newer_ledger_are_problems(
    emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import sqlite3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        conn.execute("CREATE TABLE runs (id TEXT)")
    monkeypatch.setenv("RUNCOMFY_TOKEN", emu.token)
    status, text = doctor(capsys, "--base-url", emu.base_url, "--account-base-url", closed, "--ledger", str(newer))
    assert status == 1
    assert "fail  balance" in text and closed in text
    assert "fail  ledger" in text and "upgrade seqnb" in text
    assert "ok    model api" in text


def test_without_a_token_it_describes_the_embedded_emulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("RUNCOMFY_TOKEN", "RUNCOMFY_BASE_URL", "RUNCOMFY_MODEL_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNCOMFY_CONFIG_DIR", str(tmp_path))  # no `runcomfy login` token either
    status, text = doctor(capsys)
    assert status == 0, text
    assert "info  token" in text and "offline emulator" in text and "nothing is charged" in text
    assert "the token is accepted" not in text and "accepts the token" not in text
    assert "the service answers" in text


def test_a_local_server_without_a_token_is_said_plainly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("RUNCOMFY_TOKEN", "RUNCOMFY_BASE_URL", "RUNCOMFY_MODEL_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNCOMFY_CONFIG_DIR", str(tmp_path))
    with emulator(**FAST) as emu:  # an emulator that wants its own token
        status, text = doctor(capsys, "--base-url", emu.base_url, "--ledger", str(tmp_path / "l.sqlite"))
    assert status == 1
    token = next(line for line in text.splitlines() if line.split()[1:2] == ["token"])
    assert token.startswith("info") and "none in use" in token and "local server" in token, token
    assert "********" not in text and "from none" not in text
    assert "the server wants a token and none is set" in text and "the token is refused" not in text


def test_user_prices_are_shown_and_a_bad_setting_is_a_problem(
    emu: EmulatorServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCOMFY_TOKEN", emu.token)
    monkeypatch.setenv("SEQNB_PRICES", "seedream-4.5=0.05")
    status, text = doctor(capsys, "--base-url", emu.base_url)
    assert status == 0, text
    assert "SEQNB_PRICES sets USD 0.05 (it wins)" in text and "info  user prices" in text
    monkeypatch.setenv("SEQNB_PRICES", "seedream-4.5=cheap")
    status, text = doctor(capsys, "--base-url", emu.base_url)
    assert status == 1 and "fail  user prices" in text and "'cheap'" in text


from tests import postgres  # noqa: E402

pg_cluster, pg_url = postgres.pg_cluster, postgres.pg_url  # fixtures: a throwaway PostgreSQL cluster


def test_doctor_reads_a_team_ledger_on_postgresql(pg_url: str) -> None:
    from seqnb.doctor import _ledger

    check = _ledger(pg_url)
    assert check.status == "ok" and "0 runs" in check.summary and "schema" in check.summary
    assert "password" not in check.summary


@pytest.mark.parametrize(
    ("name", "value", "check"),
    [
        ("RUNCOMFY_BASE_URL", "not a url", "urls"),
        ("RUNCOMFY_API_BASE", "not a url", "urls"),
        ("RUNCOMFY_TOKEN", "two words", "token"),
        ("SEQNB_LEDGER", "mysql://db/seqnb", "ledger"),
        ("SEQNB_USER", "alice@hub", "ledger"),
        ("SEQNB_CACHE_MAX_BYTES", "lots", "image cache"),
    ],
)
def test_a_bad_setting_is_a_failed_check_naming_it(
    name: str, value: str, check: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if name == "RUNCOMFY_API_BASE":  # read only for RunComfy: a token and a (closed) non-emulator URL
        monkeypatch.setenv("RUNCOMFY_TOKEN", "abc")
        monkeypatch.setenv("RUNCOMFY_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(name, value)
    status, text = doctor(capsys)
    assert status == 1 and "Traceback" not in text and "error:" not in text, text
    line = next(x for x in text.splitlines() if x.startswith("fail") and x[6:].startswith(check))
    assert name in line, line


def test_offline_with_a_token_the_name_failure_is_said_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNCOMFY_TOKEN", "rc-offline-token-1234")
    for name in ("RUNCOMFY_API_BASE", "RUNCOMFY_BASE_URL", "RUNCOMFY_MODEL_API_BASE"):
        monkeypatch.delenv(name, raising=False)  # RunComfy's own hosts, which no name lookup reaches here
    status, text = doctor(capsys, "--ledger", str(tmp_path / "l.sqlite"))
    assert status == 1
    lines = {line[6:].split("  ")[0].strip(): line for line in text.splitlines()}
    assert "fail  model api" in text and "resolve no outside name" in lines["model api"]
    assert text.count("resolve no outside name") == 1, text  # the conftest's name failure, told where it first struck
    assert "the same failure as model api" in lines["prices"] and "built-in" in lines["prices"]
    for spec in seqnb.models():
        assert f"{spec.short_name} {spec.currency} {spec.price_per_image}" in lines["prices"]
    assert "fail  balance" in text and "the same failure as model api" in lines["balance"]
    assert lines["references"].count("[built in (UNCONFIRMED): catalog not read]") == 2  # offline: the built-in rules
    assert "seedream-4.5-edit: at most 14 references, no rule per image" in lines["references"]
    assert "rc-offline-token-1234" not in text


def test_the_versions_name_the_nest_asyncio_seqnb_applies() -> None:
    import importlib.util
    from importlib import metadata

    from seqnb.doctor import diagnose

    (versions,) = [c for c in diagnose(ledger="l.sqlite").checks if c.name == "versions"]
    used = "nest-asyncio2" if importlib.util.find_spec("nest_asyncio2") else "nest-asyncio"  # as seqnb._loop picks
    assert versions.details[used] == metadata.version(used)
    assert [name for name in versions.details if name.startswith("nest-asyncio")] == [used]
