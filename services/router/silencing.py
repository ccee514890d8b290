"""Which silence covers an alert's labels now: the config's `silences:` and the API's, merged."""

from __future__ import annotations

from datetime import datetime

from tocsin.events.directory import Directory, local_to_utc
from tocsin.events.routing import SilenceRef
from tocsin.events.silences import Silence
from tocsin.router.matching import matches


def active_silence(directory: Directory, api: dict[str, Silence], labels: dict[str, str], when: datetime,
                   exclude: str = "") -> SilenceRef | None:
    """The silence that covers these labels at `when` and ends last, if any. `exclude` is one that has just
    ended (an `unsilence` timer), in case this router has not yet read its expiry."""
    config = directory.config
    found: SilenceRef | None = None
    for i, s in enumerate(config.silences):
        ref_id = f"config:{i}"
        starts, ends = (local_to_utc(t, config.timezone) for t in (s.starts, s.ends))
        if ref_id != exclude and starts <= when < ends and matches(s.matchers, labels) and (
                found is None or found.ends is None or ends > found.ends):
            found = SilenceRef(id=ref_id, comment=s.comment, matchers=s.matchers, ends=ends)
    for silence in api.values():
        if silence.id != exclude and silence.active(when) and matches(silence.matchers, labels) and (
                found is None or found.ends is None or silence.ends > found.ends):
            found = SilenceRef(id=silence.id, comment=silence.comment, matchers=silence.matchers, ends=silence.ends)
    return found
