from workflows.contract import ORDER_WORKFLOW
from workflows.messages import OrderSnapshot
from tests.conftest import TASK_QUEUE


async def test_one_order_fills(client, worker, account):
    intent = {"intent_id": f"{account}-o1", "account": account, "symbol": "AAPL", "side": "BUY", "quantity": 10, "limit_price": 190.0}
    result = await client.execute_workflow(ORDER_WORKFLOW, intent, id=intent["intent_id"], task_queue=TASK_QUEUE, result_type=OrderSnapshot)
    print(result)
    assert result.state.value in ("FILLED",)
