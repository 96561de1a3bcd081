"""``seqnb doctor``: what seqnb would use and whether it works, as data (``diagnose``), shown as text or JSON.

It reports the token's source (never the token), the base URLs, one authenticated call to the
Model API (the catalog entry of one model: it proves the token where requests are sent), the
catalog's prices against the built-in ones and its schema against the built-in spec, the reference
rules in use (the catalog's live ones, or the built-in ones offline), the balance
(a second authenticated call, to the account API), the ledger, the image cache and the versions.
A check that fails makes ``DoctorReport.ok`` false (the command's exit status 1).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from contextlib import closing
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from . import errors
from .api.auth import Secret
from .api.backend import EMBEDDED, NO_TOKEN, Backend
from .model.pricing import Price, amount_text

__all__ = ["Check", "DoctorReport", "diagnose"]

Status = Literal["ok", "info", "warn", "fail"]
PROBE_MODEL = "bytedance/seedream-4-5/sequential"
"""The model whose catalog entry is the authenticated call that proves the token."""
PACKAGES = ("aiohttp", "httpx", "ipywidgets", "pandas", "pillow", "starlette", "uvicorn", "ipykernel")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was looked at, how it went, and the facts behind it."""

    name: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings are allowed)."""
        return all(c.status != "fail" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def text(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"{c.status:<5} {c.name:<{width}}  {c.summary}" for c in self.checks]
        failed = [c.name for c in self.checks if c.status == "fail"]
        lines.append("result: " + ("ok" if not failed else f"{len(failed)} problem(s): {', '.join(failed)}"))
        return "\n".join(lines)


def _first_line(exc: BaseException) -> str:
    return str(exc).split(" - ")[0]


def _network_failure(exc: object) -> tuple[str, object] | None:
    """What kept a call from its host, as a key two hosts share (offline: the same name-lookup failure), or None
    when the call was answered: the operating system's error under it, by type and errno (its text names the host)."""
    if not isinstance(exc, errors.ConnectError):
        return None
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    return (type(cause).__name__, cause.errno) if cause is not None else ("ConnectError", str(exc))


def _versions() -> Check:
    import importlib.util

    from ._version import __version__

    found = {"seqnb": __version__, "python": sys.version.split()[0]}
    # the nest-asyncio seqnb applies (``_loop``): ipykernel's maintained fork when installed, else the original
    nest = "nest-asyncio2" if importlib.util.find_spec("nest_asyncio2") is not None else "nest-asyncio"
    for name in (*PACKAGES, nest):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return Check("versions", "info", ", ".join(f"{k} {v}" for k, v in found.items()), found)


def _ledger(path: str | None) -> Check:
    from .ledger.facade import ledger_target
    from .ledger.schema import SCHEMA_VERSION

    target, setting = ledger_target(path, "--ledger")
    if target.startswith(("postgresql://", "postgres://")):
        return _server_ledger(target)
    if "://" in target:
        return Check(
            "ledger", "fail", f"{setting}: {target!r} is not a file path or a postgresql:// URL", {"target": target}
        )
    from .ledger.sessions import SessionInfo

    try:
        SessionInfo.here()  # who the ledger would record: a bad SEQNB_USER says so here
    except errors.SettingInvalid as exc:
        return Check("ledger", "fail", str(exc), {"user": os.environ.get("SEQNB_USER", "")})
    where = Path(target).expanduser()
    details: dict[str, Any] = {"path": str(where.resolve()), "schema_supported": SCHEMA_VERSION}
    if not where.exists():
        return Check("ledger", "info", f"none yet at {where.resolve()} (made on the first run)", details)
    try:  # read-only: the doctor never creates or migrates a ledger
        with closing(sqlite3.connect(f"{where.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            runs = int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]) if version else 0
    except sqlite3.Error as exc:
        details["error"] = str(exc)
        return Check(
            "ledger", "fail", f"{where} cannot be read ({exc}); check the file or point SEQNB_LEDGER elsewhere", details
        )
    size = sum(p.stat().st_size for p in (where, Path(f"{where}-wal")) if p.exists())
    details.update(size_bytes=size, schema_version=version, runs=runs)
    summary = f"{where}: {_runs(runs)}, {size / 1024:.0f} KiB, schema {version}"
    if version > SCHEMA_VERSION:
        return Check("ledger", "fail", f"{summary}, newer than this seqnb's {SCHEMA_VERSION}: upgrade seqnb", details)
    if version < SCHEMA_VERSION:
        return Check("ledger", "info", f"{summary} (migrated to {SCHEMA_VERSION} when next opened)", details)
    return Check("ledger", "ok", summary, details)


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _server_ledger(url: str) -> Check:
    """A PostgreSQL ledger: opened (which migrates it, as any kernel would), counted, named without its password."""
    from .errors import LedgerError
    from .ledger.facade import Ledger

    try:
        ledger = Ledger(url)
        summary = f"{ledger.location}: {_runs(ledger.count())}, schema {ledger.version}"
    except LedgerError as exc:
        return Check("ledger", "fail", str(exc), {"error": str(exc)})
    return Check("ledger", "ok", summary, {"location": str(ledger.location), "schema_version": ledger.version})


def _cache(directory: str | None) -> Check:
    from .images.cache import ImageCache

    try:
        usage = ImageCache(directory).usage()
    except (OSError, ValueError) as exc:
        return Check("image cache", "fail", f"cannot be read: {exc}", {"path": str(directory)})
    details = {
        "path": str(usage.directory),
        "files": usage.files,
        "size_bytes": usage.bytes,
        "limit_bytes": usage.limit,
    }
    summary = (
        f"{usage.directory}: {usage.files} files, {usage.bytes / 1024**2:.1f} MiB of {usage.limit / 1024**3:.1f} GiB"
    )
    return Check("image cache", "ok", summary, details)


def _user_prices() -> tuple[Check | None, dict[str, Price]]:
    """``SEQNB_PRICES``, when set, as a check, and the prices it sets (they win over the catalog's)."""
    from .model.pricing import prices_from_env

    if not os.environ.get("SEQNB_PRICES", "").strip():
        return None, {}
    try:
        found = prices_from_env()
    except errors.SettingInvalid as exc:
        return Check("user prices", "fail", str(exc), {"SEQNB_PRICES": os.environ["SEQNB_PRICES"]}), {}
    shown = {k: f"{p.currency} {p.per_image}" for k, p in found.items()}
    summary = "SEQNB_PRICES sets " + ", ".join(f"{k} {v}" for k, v in shown.items())
    return Check("user prices", "info", summary, shown), found


def _failed_call(name: str, call: str, exc: Any, tokened: bool, otherwise: str, said: str | None = None) -> Check:
    """A call that did not answer what was asked: the token refused, else ``otherwise``; ``said``: what went wrong
    (default: the error's first line)."""
    refused = "the token is refused" if tokened else "the server wants a token and none is set (RUNCOMFY_TOKEN=...)"
    why = refused if isinstance(exc, errors.AuthError) else otherwise
    return Check(name, "fail", f"{why}: {call}: {said or _first_line(exc)}", {"call": call, "error": str(exc)})


def _network(
    api: str,
    account: str,
    secret: Secret,
    backend: Backend,
    tokened: bool = True,
    account_secret: Secret | None = None,
    mine: dict[str, Price] | None = None,
) -> list[Check]:
    """The catalog, prices, schemas and balance as the service answers them; ``tokened``: a token of the user's is sent.

    ``account_secret``: the token the balance call may carry (``balance_secret``), None for none; ``mine``: the
    prices ``SEQNB_PRICES`` sets (they win).
    """
    import asyncio

    from ._loop import run_detached
    from .api.account import DEADLINE as BALANCE_DEADLINE
    from .api.account import Balance, fetch_balance
    from .api.catalog import service
    from .api.catalog.drift import schema_drift
    from .api.catalog.entry import CatalogEntry, price_of
    from .model.spec import models

    account_source = backend.account_source(account)
    label = backend.catalog_label

    async def both_calls() -> tuple[dict[str, Any], Any]:
        entries, balance = await asyncio.gather(
            service.fetch_entries(api, secret, [m.id for m in models()]),
            fetch_balance(account, account_secret, account_source),
            return_exceptions=True,
        )
        if isinstance(entries, BaseException):  # pragma: no cover - fetch_entries keeps failures in place
            raise entries
        return entries, balance

    entries, balance = run_detached(both_calls, max(service.DEADLINE, BALANCE_DEADLINE) + 2.0)
    probe = entries[PROBE_MODEL]
    path = f"GET {api}/models/{PROBE_MODEL}"
    unreached = _network_failure(probe)  # told once, under "model api"; the checks it also struck point there
    if isinstance(probe, CatalogEntry):
        said = f"{'the token is accepted' if tokened else 'the service answers'}: {path} answered its catalog entry"
        out = [Check("model api", "ok", said, {"call": path})]
    else:
        out = [_failed_call("model api", path, probe, tokened, "the call failed")]
    rows: dict[str, Any] = {}
    lines: list[str] = []
    status: Status = "ok"
    drift: list[str] = []
    same_failure: list[str] = []
    for spec in models():
        result = entries.get(spec.id)
        builtin = f"{spec.currency} {spec.price_per_image}"
        wins = mine.get(spec.id) if mine else None
        note = f"; SEQNB_PRICES sets {wins.currency} {wins.per_image} (it wins)" if wins is not None else ""
        if not isinstance(result, CatalogEntry):
            rows[spec.id] = {"catalog": None, "builtin": builtin, "error": str(result)}
            status = "warn"
            if unreached is not None and _network_failure(result) == unreached:
                same_failure.append(f"{spec.short_name} {builtin}{note}")
                continue
            why = service.why_unavailable(result) if isinstance(result, errors.SeqnbError) else "catalog unavailable"
            lines.append(f"{spec.short_name}: {why}; built-in {builtin}{note}")
            continue
        price = price_of(result, label)
        rows[spec.id] = {
            "catalog": result.price_text(),
            "builtin": builtin,
            "used": str(price.per_image) if isinstance(price, Price) else None,
        }
        same = " (same)" if isinstance(price, Price) and price.per_image == spec.price_per_image else ""
        lines.append(f"{spec.short_name}: {result.price_text()} in the catalog, built-in {builtin}{same}{note}")
        if isinstance(price, str):
            status = "warn"
            rows[spec.id]["problem"] = price
        if result.input_schema is not None:  # a live reference rule is the one checked: said under "references"
            drift += [str(d) for d in schema_drift(spec, result.input_schema) if not d.followed]
    if same_failure:
        lines.insert(0, "catalog not reached (the same failure as model api), built-in " + ", ".join(same_failure))
    out.append(Check("prices", status, "; ".join(lines), rows))
    if drift:
        out.append(Check("schema", "warn", f"{len(drift)} difference(s): " + " | ".join(drift), {"drift": drift}))
    elif all(isinstance(e, CatalogEntry) for e in entries.values()):
        out.append(Check("schema", "ok", "the live input schemas match the built-in specs", {"drift": []}))
    out.append(_reference_rules(entries, label))
    call = f"GET {account}/prod/v2/balance"
    if isinstance(balance, Balance):
        said = f"{balance} ({account_source}; {call} {'also accepts the token' if tokened else 'answers too'})"
        facts = {"amount": amount_text(balance.amount), "currency": balance.currency, "source": balance.source}
        out.append(Check("balance", "ok", said, {**facts, "call": call}))
    elif unreached is not None and _network_failure(balance) == unreached:
        said = f"{account} not reached either (the same failure as model api)"
        out.append(_failed_call("balance", call, balance, tokened, "cannot be read", said))
    else:
        out.append(_failed_call("balance", call, balance, tokened, "cannot be read"))
    return out


def _reference_rules(entries: dict[str, Any], label: str) -> Check:
    """Which reference rules a client checks per model, as its ``Catalog`` says (``limits_in_use``): the catalog's
    live ones (its schema's ``maxItems`` and ``validations``), else the built-in ones (offline, or when the catalog
    cannot be read)."""
    from .api.catalog.entry import CatalogEntry
    from .api.catalog.service import limits_in_use
    from .model.spec import models

    lines: list[str] = []
    rows: dict[str, Any] = {}
    for spec in models():
        if spec.references_field is None:
            continue
        entry = entries.get(spec.id)
        read = entry if isinstance(entry, CatalogEntry) else None
        used, source = limits_in_use(spec, read, label, "the catalog gives none" if read else "catalog not read")
        field = used.references_field
        assert field is not None
        rules = [f"{v.rule} {v.value}" for v in field.validations]
        rows[spec.id] = {"max_items": field.max_items, "validations": rules, "source": source}
        said = f"{len(rules)} rule(s) per image ({', '.join(rules)})" if rules else "no rule per image"
        lines.append(f"{spec.short_name}: at most {field.max_items} references, {said} [{source}]")
    return Check("references", "info", "; ".join(lines), rows)


_URL_SETTINGS = ("base_url", "RUNCOMFY_BASE_URL", "RUNCOMFY_MODEL_API_BASE", "account_base_url", "RUNCOMFY_API_BASE")


def _scrub(check: Check, secret: str) -> Check:
    """Defence in depth: no field of the report may hold the token."""
    text = json.dumps(asdict(check))
    if secret not in text:
        return check
    clean = json.loads(text.replace(secret, "********"))
    return Check(clean["name"], clean["status"], clean["summary"], clean["details"])


def diagnose(
    base_url: str | None = None,
    *,
    account_base_url: str | None = None,
    token: str | Secret | None = None,
    ledger: str | None = None,
    cache_dir: str | None = None,
) -> DoctorReport:
    """Look at everything seqnb would use; never raises for what it finds (it reports it)."""
    from .api.account import account_base_for, balance_secret
    from .api.backend import resolve_backend

    checks: list[Check] = []
    secret: Secret | None = None
    user, mine = _user_prices()
    try:
        backend, secret, api = resolve_backend(token, base_url)
        account = account_base_for(backend, account_base_url)
    except errors.SettingInvalid as exc:  # a bad base URL or token setting
        where = "urls" if str(exc).startswith(_URL_SETTINGS) else "token"
        checks.append(Check(where, "fail", _first_line(exc), {}))
    except errors.SeqnbError as exc:
        checks.append(Check("token", "fail", _first_line(exc), {}))
    else:
        emulated = backend.kind == "emulator"
        source = {"source": backend.token_source}
        tokened = backend.token_source not in (EMBEDDED, NO_TOKEN)
        if backend.token_source == EMBEDDED:
            checks.append(Check("token", "info", f"none in use: {backend}", source))
        elif not tokened:
            what = "seqnb's offline emulator: nothing is charged" if emulated else "not known to be seqnb's emulator"
            checks.append(Check("token", "info", f"none in use: {backend.base_url} is a local server, {what}", source))
        else:
            where = "; the server is seqnb's offline emulator: nothing is charged" if emulated else ""
            checks.append(Check("token", "ok", f"from {backend.token_source} (never shown){where}", source))
        urls = {"backend": backend.kind, "model_api": api, "account_api": account}
        checks.append(Check("urls", "info", f"Model API {api}; account API {account}", urls))
        account_secret = balance_secret(backend, account_base_url, secret)
        checks += _network(api, account, secret, backend, tokened, account_secret, mine)
    checks += [*([user] if user is not None else []), _ledger(ledger), _cache(cache_dir), _versions()]
    if secret is not None and secret.source != NO_TOKEN:  # the placeholder "local" is no secret (and a common word)
        checks = [_scrub(c, secret.reveal()) for c in checks]
    return DoctorReport(tuple(checks))
