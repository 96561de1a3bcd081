"""The sync ``Client`` has the async core's names; every difference is listed here on purpose, with its reason."""

from __future__ import annotations

import inspect

import seqnb
from seqnb.emulator import EmulatorServer

ASYNC_ONLY = {
    "aclose": "close",  # and ``async with``: the sync side closes with ``close()`` and ``with``
}
ASYNC_RUN_ONLY = {  # the state machine's own parts, which the client and the poller use: not for a notebook
    "bound": "whether a client owns it",
    "emit": "tell subscribers of a change",
    "kind": "(model, count), for the poller's pace",
    "of": "adopt a run rebuilt from a ledger",
    "say": "set a note",
    "transition": "move to a state",
    "unsubscribe": "the function subscribe returns does it",
    "watching": "whether the poller watches it",
}
SYNC_ONLY_PARAMETERS = {"sweep": {"quiet"}, "promote": {"quiet"}}  # quiet: no summary printed, as a cell wants
SYNC_ONLY = {
    "aio": "the async client it drives",
    "close": "the sync aclose",
}


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_the_sync_run_has_the_async_runs_names_and_typed_attributes(seqnb_emulator: EmulatorServer) -> None:
    """``Run`` mirrors ``AsyncRun``: the same public names (its ``aio`` and ``client`` aside), each declared, none
    forwarded by ``__getattr__`` (editors and mypy see them)."""
    with seqnb.Client(seqnb_emulator.token, seqnb_emulator.base_url) as client:
        run = client.submit("seedream-4.5", "Generate 1 image of a wren", count=1, seed=4).wait(20)
        mirrored = _public(run) - {"aio"}
        assert _public(run.aio) - mirrored == set(ASYNC_RUN_ONLY), "mirror a new AsyncRun name on Run, or list it"
        assert not hasattr(seqnb.Run, "__getattr__")
        for name in mirrored - {"client"}:
            assert name in vars(seqnb.Run), f"Run.{name} is not declared on the class"
        assert run.status == run.aio.status == "completed" and run.images == run.aio.images


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
