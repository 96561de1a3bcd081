"""The sync ``Client`` has the async core's names; every difference is listed here on purpose, with its reason."""

from __future__ import annotations

import inspect

import seqnb
from seqnb.emulator import EmulatorServer

ASYNC_ONLY = {
    # the steps the sync one-call methods (submit, sweep, attach, rerun, balance) take in one go
    "prepare": "submit",
    "prepare_attach": "attach",
    "prepare_rerun": "rerun",
    "prepare_sweep": "sweep",
    "prepare_promote": "promote",
    "send": "submit",
    "send_all": "sweep",
    "adopt": "submit",
    "check_balance": "sweep",
    "load_prices": "submit",
    "read_balance": "balance",
    "aclose": "close",
    # the core's parts and settings, read through ``client.aio``
    "account_base": "",
    "catalog": "",
    "last_balance": "",
    "live_schema": "",
    "max_concurrency": "",
    "money": "",
    "poller": "",
    "recorder": "",
    "references": "",
    "transport": "",
    "user_prices": "",
}
SYNC_ONLY_PARAMETERS = {"sweep": {"quiet"}, "promote": {"quiet"}}  # quiet: no summary printed, as a cell wants
SYNC_ONLY = {
    "aio": "the async core it drives",
    "attached": "whether work runs on the caller's loop (Jupyter) or seqnb's thread",
    "call": "run a coroutine of the core from sync code",
    "spawn": "start a coroutine of the core in the background",
    "wrap": "the sync Run of an AsyncRun",
    "close": "the sync aclose",
    "settle": "wait for the gallery's downloads (the async side awaits gallery.settle())",
    "report": "a file made from the ledger and the image cache: nothing to await",
    "export_images": "files copied from the image cache: nothing to await",
}


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_the_sync_client_has_the_async_names_but_the_listed_ones(seqnb_emulator: EmulatorServer) -> None:
    with seqnb.Client(seqnb_emulator.token, seqnb_emulator.base_url) as client:
        sync, core = _public(client), _public(client.aio)
        assert core - sync == set(ASYNC_ONLY), "list a new async-only name in ASYNC_ONLY with its reason, or mirror it"
        assert sync - core == set(SYNC_ONLY), "list a new sync-only name in SYNC_ONLY with its reason, or add it"
        for name, instead in ASYNC_ONLY.items():
            assert not instead or instead in sync, f"{name}: the sync {instead!r} it stands for is missing"


def test_shared_methods_take_the_same_arguments(seqnb_emulator: EmulatorServer) -> None:
    """A sync method mirrors its async twin's parameters (``self`` aside)."""
    with seqnb.Client(seqnb_emulator.token, seqnb_emulator.base_url) as client:
        for name in sorted(_public(client) & _public(client.aio)):
            sync, core = getattr(client, name), getattr(client.aio, name)
            if not (inspect.ismethod(sync) and inspect.ismethod(core)):
                continue
            mine = [p for p in inspect.signature(sync).parameters if p not in SYNC_ONLY_PARAMETERS.get(name, ())]
            assert mine == list(inspect.signature(core).parameters), name


def test_sync_attach_and_refresh_prices_delegate_to_the_core(seqnb_emulator: EmulatorServer) -> None:
    with seqnb.Client(seqnb_emulator.token, seqnb_emulator.base_url) as client:
        run = client.submit("seedream-4.5", "Generate 2 images of a kite", count=2, seed=3).wait(20)
        with seqnb.Client(seqnb_emulator.token, seqnb_emulator.base_url) as other:
            adopted = other.attach(run.request_id, "seedream-4.5", count=2).wait(20)
            assert adopted.status == "completed" and len(adopted.images) == 2
            assert set(other.refresh_prices()) == {m.id for m in seqnb.models()}
