"""An account's result stays under the payload limit (protocol/result_bounds.py): a week of
thousands of orders made a 2.6 MB RiskResult that the server refused on every retry."""

from __future__ import annotations

from domain.digest import DigestItem, DigestKind
from domain.enums import Bucket, Side
from domain.ledger import FillRecord
from protocol.messages import RiskResult
from protocol.result_bounds import MAX_RESULT_BYTES, bounded_result


def result(items: int, fills: int) -> RiskResult:
    return RiskResult(
        account="a",
        decisions=[],
        intents=[],
        outcomes={},
        hard_cap_pct=130.0,
        final_exposure=None,
        positions=[],
        digest="sha256:" + "0" * 64,
        digest_items=[DigestItem(seq=i + 1, kind=DigestKind.FILL, body={"id": f"o{i}/C{i}", "pad": "x" * 300}) for i in range(items)],
        fills=[
            FillRecord(
                cycle=i,
                exchange_time="11:00:00",
                fill_id=f"o{i}/A",
                intent_id=f"o{i}",
                symbol="AAPL",
                bucket=Bucket.LT,
                side=Side.BUY,
                quantity=1,
                price=1.0,
            )
            for i in range(fills)
        ],
    )


def test_a_result_past_the_limit_keeps_the_newest_and_says_what_it_left_out():
    big = result(5_000, 2_000)
    assert len(big.model_dump_json()) > MAX_RESULT_BYTES
    kept = bounded_result(big)
    assert len(kept.model_dump_json()) <= MAX_RESULT_BYTES
    assert kept.digest_items[-1] == big.digest_items[-1] and kept.digest_items[0].seq > 1  # the newest kept
    assert kept.trimmed and kept.trimmed[0].startswith("digest_items: the newest ") and kept.trimmed[0].endswith("of 5,000")
    assert kept.digest == big.digest and kept.fills == big.fills  # the chain is the digest; the smaller list stays whole


def test_a_days_result_is_left_alone():
    small = result(300, 50)
    assert bounded_result(small) is small and small.trimmed == []
