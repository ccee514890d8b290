"""Seeing and replaying dead letters (`tocsin dead-letters list` / `replay`).

A replay publishes the original command again, on its original subject, under a new notification id
derived from the dead letter (`stable_id("replay", dead letter id)`): the ledger holds the old id as
failed and would not send it again, while replaying the same dead letter twice is still one page.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import msgspec

from tocsin.events import deadletters, notify
from tocsin.events.base import stable_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.streams import DEADLETTER


@dataclass(frozen=True)
class Stored:
    seq: int
    letter: deadletters.DeadLettered

    def line(self) -> str:
        what = self.letter.notification_id or "(undecodable)"
        where = f" {self.letter.channel}" if self.letter.channel else ""
        return (f"{self.seq:>6}  {self.letter.at:%Y-%m-%d %H:%M:%S}  {self.letter.channel_kind}{where}  "
                f"{self.letter.reason}  {what}  {self.letter.error}")


async def stored(bus: Bus, kind: str = "") -> list[Stored]:
    out = []
    for seq, data in await bus.read_subject(DEADLETTER.name, deadletters.subject(kind) if kind else "deadletter.>"):
        try:
            out.append(Stored(seq, deadletters.decoder.decode(data)))
        except msgspec.DecodeError:
            continue
    return out


async def replay(bus: Bus, item: Stored) -> str:
    """Publish the dead letter's command again; return its new notification id. Raises ValueError for a
    command that cannot be read (there is nothing to send)."""
    letter = item.letter
    try:
        command = notify.decoder.decode(base64.b64decode(letter.payload))
    except (msgspec.DecodeError, ValueError) as exc:
        raise ValueError(f"dead letter {item.seq} holds no readable command ({letter.reason}): {exc}") from None
    again = msgspec.structs.replace(command, id=stable_id("replay", letter.id), at=utcnow())
    await bus.publish(letter.subject or notify.subject(letter.channel_kind), again)
    return again.id
