"""The emulator's ``cost`` in a result asked with ``include_cost=true``, over HTTP on a manual clock."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from seqnb.emulator import EmulatorConfig, Faults
from tests.conftest import M40, M45

from .test_emulator import on_clock, submit

FOX3 = {"prompt": "Generate 3 images of a fox", "sequential_image_generation_options": 3}


def result(http: httpx.Client, rid: str, include_cost: bool = True) -> dict[str, object]:
    answer = http.get(f"/v1/requests/{rid}/result", params={"include_cost": "true"} if include_cost else None)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def balance(http: httpx.Client) -> Decimal:
    return Decimal(str(http.get("/prod/v2/balance").json()["balance_usd"]))


def test_a_completed_run_costs_its_count_at_the_catalog_price_and_only_when_asked() -> None:
    with on_clock(prices={"seedream-4.5": "0.05"}, workers=1) as (_, clock, http):
        rid = submit(http, M45, **FOX3)
        assert "cost" not in result(http, rid)  # not ended yet: nothing to say
        clock.advance(60)
        assert result(http, rid)["cost"] == pytest.approx(0.15)  # 3 asked x USD 0.05, the emulator's catalog price
        assert "cost" not in result(http, rid, include_cost=False)
        catalog = http.get(f"/v1/models/{M45}").json()
        assert Decimal(str(catalog["base_price_usd"])) == Decimal("0.05")


def test_a_run_cancelled_in_the_queue_costs_nothing() -> None:
    with on_clock(workers=1, queue_wait=5.0) as (_, clock, http):
        rid = submit(http, M40)
        assert http.post(f"/v1/requests/{rid}/cancel").json()["outcome"] == "cancelled"
        clock.advance(60)
        body = result(http, rid)
        assert body["status"] == "cancelled" and body["cost"] == 0


@pytest.mark.parametrize(("share", "charged"), [(None, 0.0), ("0.5", 0.06)])
def test_a_failed_run_costs_the_configured_share_zero_by_default(share: str | None, charged: float) -> None:
    """What RunComfy charges for a failed run is unconfirmed: a setting, 0 unless told."""
    extra = {} if share is None else {"failed_cost_share": share}
    with on_clock(faults=Faults(fail=1.0), balance="1.00", **extra) as (_, clock, http):
        rid = submit(http, M45, **FOX3)  # 3 x USD 0.04
        clock.advance(60)
        body = result(http, rid)
        assert body["status"] == "failed" and body["cost"] == pytest.approx(charged)
        assert balance(http) == Decimal("1.00") - Decimal(str(charged))  # the wallet agrees with the answer


@pytest.mark.parametrize("share", ["-0.1", "1.5", "half"])
def test_a_failed_cost_share_outside_0_to_1_is_refused(share: str) -> None:
    with pytest.raises(ValueError, match="failed_cost_share"):
        EmulatorConfig(failed_cost_share=share)  # type: ignore[arg-type]
