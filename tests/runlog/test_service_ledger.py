"""The service's tables (`ServiceStore`) on both backends: idempotency keys, batches written as
they come, notifications, and the run list's cursor."""

from __future__ import annotations

from dreamnodes.service.ledger import ServiceStore


def test_the_service_ledger_round_trips(store_url: str) -> None:
    with ServiceStore(store_url, secrets=["sk-secret-value-123"]) as store:
        assert store.claim_key("idem-1", "run", "fp-1") == (True, "fp-1", None)
        assert store.claim_key("idem-1", "run", "fp-2") == (False, "fp-1", None)
        store.set_key_target("idem-1", "r_1")
        assert store.key_target("idem-1") == "r_1" and store.key_target("nope") is None

        items = [{"index": 0, "run_id": None}]
        store.save_batch("b_1", node="dream_machine", status="running", items=items)
        items = [{"index": 0, "run_id": "r_1", "note": "sk-secret-value-123"}]
        store.save_batch("b_1", node="dream_machine", status="running", items=items)
        store.interrupt_batches()
        batch = store.batch("b_1")
        assert batch is not None and batch["status"] == "interrupted" and batch["total"] == 1
        assert batch["items"] == [{"index": 0, "run_id": "r_1", "note": "[redacted]"}]
        assert store.batch("b_nope") is None

        store.add_notification("b_1", "https://hook.example/x", "failed", 3, "timeout")
        store.add_notification("b_1", "https://hook.example/x", "delivered", 1, None)
        assert [n["status"] for n in store.notifications("b_1")] == ["failed", "delivered"]

        ids = [
            store.start(node=n, provider="luma", params={}, context=None, options={})
            for n in ("a", "b", "a")
        ]
        assert store.run_ids() == ids[::-1]
        assert store.run_ids(before=ids[2]) == ids[1::-1]
        assert store.run_ids(node="a", limit=1) == [ids[2]]
        assert store.run_ids(status="abandoned") == ids[::-1]  # running, as stored
        assert store.run_ids(before="r_nope") == []
        store.finish(ids[0], output={})
        assert store.run_ids(status="succeeded") == [ids[0]]
        assert store.run_with_unit(f"run:{ids[1]}") == ids[1]
