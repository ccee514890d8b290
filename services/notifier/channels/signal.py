"""Signal through signal-cli: its JSON-RPC HTTP daemon (`rest_url`) or the command itself (`cli_path`).

Daemon: `POST {rest_url}/api/v1/rpc` with `{"jsonrpc": "2.0", "method": "send", "params": {"recipient": [...],
"message": ..., "account"?: ...}, "id": ...}`; the answer is `{"result": {"timestamp": ...}}` or
`{"error": {"code", "message"}}`. Command: `signal-cli -a ACCOUNT send -m MESSAGE RECIPIENT`, run with
an argument list (never a shell), the message text passed as one argument.

signal-cli's error codes (JSON-RPC `error.code`, or the command's exit status): user error (-1 / exit 1) and
untrusted identity key (-4 / exit 4) are permanent; I/O or server trouble (-3 / 3), rate limiting (-5 / 5)
and unexpected errors (-2 / 2) are retried.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Outcome, Target, classify_status, text_body

MAX_SIGNAL = 2000       # a Signal message can be longer; a page should fit on a lock screen
RETRY_CODES = frozenset({-2, -3, -5, 2, 3, 5})
CLI_TIMEOUT = 60.0


def rpc_outcome(code: int) -> Outcome:
    return "retry" if code in RETRY_CODES else "permanent"


class SignalChannel(Channel):
    kind: ClassVar[str] = "signal"

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        recipient = target.fields.get("recipient", "")
        if not recipient or recipient.startswith("-"):
            return DeliveryResult("permanent", error=f"not a Signal recipient: {recipient!r}")
        text = text_body(message, MAX_SIGNAL)
        if target.provider.get("rest_url"):
            return await self._rpc(message, target, recipient, text)
        if target.provider.get("cli_path"):
            return await self._cli(target, recipient, text)
        return DeliveryResult("permanent", error="providers.signal needs rest_url or cli_path")

    async def _rpc(self, message: NotificationRequested, target: Target, recipient: str,
                   text: str) -> DeliveryResult:
        params: dict[str, Any] = {"recipient": [recipient], "message": text}
        if target.provider.get("account"):
            params["account"] = target.provider["account"]   # the daemon's multi-account mode needs it
        call = {"jsonrpc": "2.0", "method": "send", "params": params, "id": message.id}
        url = target.provider["rest_url"].rstrip("/") + "/api/v1/rpc"
        async with self.session.post(url, json=call, allow_redirects=False) as resp:
            outcome = classify_status(resp.status)
            try:
                answer = await resp.json(content_type=None)
            except ValueError:
                answer = None
            if outcome != "ok" or not isinstance(answer, dict):
                error = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                return DeliveryResult(outcome if outcome != "ok" else "retry", error=error)
        if isinstance(answer.get("error"), dict):
            code = answer["error"].get("code")
            code = code if isinstance(code, int) else 0
            return DeliveryResult(rpc_outcome(code),
                                  error=f"signal-cli error {code}: {answer['error'].get('message', '')}"[:300])
        result = answer.get("result")
        timestamp = result.get("timestamp", "") if isinstance(result, dict) else ""
        return DeliveryResult.ok(str(timestamp))

    async def _cli(self, target: Target, recipient: str, text: str) -> DeliveryResult:
        argv = [target.provider["cli_path"]]
        if target.provider.get("account"):
            argv += ["-a", target.provider["account"]]
        # The text always begins with the subject line ("#42 ...", "[CRITICAL] ..."), and a recipient may
        # not begin with '-' (checked in send), so neither can be read as an option.
        argv += ["send", "-m", text, recipient]
        try:
            process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                           stdout=asyncio.subprocess.PIPE,
                                                           stderr=asyncio.subprocess.PIPE)
        except (FileNotFoundError, PermissionError) as exc:
            return DeliveryResult("permanent", error=f"providers.signal.cli_path cannot be run: {exc.strerror}")
        try:
            out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            return DeliveryResult("retry", error=f"signal-cli did not finish within {CLI_TIMEOUT:.0f}s")
        if process.returncode == 0:
            return DeliveryResult.ok(out.decode(errors="replace").strip().splitlines()[-1:][0]
                                     if out.strip() else "")
        code = process.returncode or 0
        outcome: Outcome = rpc_outcome(code) if code > 0 else "retry"   # killed by a signal: try again
        detail = err.decode(errors="replace").strip()[-200:]
        return DeliveryResult(outcome, error=f"signal-cli exited with {code}: {detail}"[:300])
