"""The rig's internal messages signed where they are sent and verified where they arrive
(protocol/signing.py says which messages and how).

- `signed(client, keyring)`: the same client, signing every internal signal and update it sends
  (the worker's activities, the desk API's handler and the broker gateway send through it).
- `Verifier(keyring)`: a worker interceptor. An internal update without a valid signature is
  refused by its validator (nothing reaches the history); an internal signal without one is
  dropped and logged. Runs recorded before messages were signed took every signal: they still
  do when replayed (`workflow.patched`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import temporalio.api.common.v1
from temporalio import client as temporal_client
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from protocol.signing import HEADER, INTERNAL, INTERNAL_SIGNALS, INTERNAL_UPDATES, Keyring

SIGNED_SIGNALS = "signed-internal-signals"
UNSIGNED = "UnsignedInternalMessage"


def _with_signature(headers: Mapping[str, temporalio.api.common.v1.Payload], signature: str) -> dict[str, temporalio.api.common.v1.Payload]:
    payload = temporalio.api.common.v1.Payload(metadata={"encoding": b"binary/plain"}, data=signature.encode())
    return {**headers, HEADER: payload}


def _signature(headers: Mapping[str, temporalio.api.common.v1.Payload]) -> str | None:
    payload = headers.get(HEADER)
    return payload.data.decode(errors="replace") if payload is not None else None


class _Signing(temporal_client.OutboundInterceptor):
    def __init__(self, nxt: temporal_client.OutboundInterceptor, keyring: Keyring) -> None:
        super().__init__(nxt)
        self._keyring = keyring

    def _signed(self, workflow_id: str, name: str, args: Sequence[Any], headers: Mapping[str, temporalio.api.common.v1.Payload]) -> Any:
        return _with_signature(headers, self._keyring.sign(workflow_id, name, args)) if name in INTERNAL else headers

    async def signal_workflow(self, input: temporal_client.SignalWorkflowInput) -> None:
        input.headers = self._signed(input.id, input.signal, input.args, input.headers)
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: temporal_client.StartWorkflowUpdateInput) -> temporal_client.WorkflowUpdateHandle[Any]:
        input.headers = self._signed(input.id, input.update, input.args, input.headers)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: temporal_client.StartWorkflowUpdateWithStartInput
    ) -> temporal_client.WorkflowUpdateHandle[Any]:
        update = input.update_workflow_input
        update.headers = self._signed(input.start_workflow_input.id, update.update, update.args, update.headers)
        return await super().start_update_with_start_workflow(input)


class Signer(temporal_client.Interceptor):
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def intercept_client(self, next: temporal_client.OutboundInterceptor) -> temporal_client.OutboundInterceptor:
        return _Signing(next, self._keyring)


def signed(client: temporal_client.Client, keyring: Keyring) -> temporal_client.Client:
    """`client` with the rig's signature on every internal message it sends."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], Signer(keyring)]
    return temporal_client.Client(**config)


class Verifier(Interceptor):
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor] | None:
        keyring = self._keyring

        class Verifying(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                if input.update in INTERNAL_UPDATES and not keyring.verifies(
                    _signature(input.headers), workflow.info().workflow_id, input.update, input.args
                ):
                    raise ApplicationError(f"{input.update} is the rig's own message: refused without the rig's signature", type=UNSIGNED)
                super().handle_update_validator(input)

            async def handle_signal(self, input: HandleSignalInput) -> None:
                if input.signal in INTERNAL_SIGNALS and not keyring.verifies(
                    _signature(input.headers), workflow.info().workflow_id, input.signal, input.args
                ):
                    if workflow.patched(SIGNED_SIGNALS):  # a run recorded before signing took it: replayed, it still does
                        workflow.logger.warning("%s without the rig's signature: dropped", input.signal)
                        return
                await super().handle_signal(input)

        return Verifying
