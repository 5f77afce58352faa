"""The check that Delta still has every internal Conveyor drives (`delta_internals`), with a
member taken away: what the JVM answers is simulated, the message is the real one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conveyor.spark import delta_internals
from conveyor.spark.delta_internals import MEMBERS, DeltaInternalsChanged, missing_members


def _all_but(gone: str) -> dict[str, set[str]]:
    present = {name: set(members) | {"toString"} for name, members in MEMBERS.items()}
    cls, _, member = gone.rpartition(".")
    present[cls].discard(member)
    return present


def test_every_member_present_is_no_problem() -> None:
    present = {name: set(members) for name, members in MEMBERS.items()}
    assert missing_members(present.get) == []


def test_a_missing_member_or_class_is_named() -> None:
    gone = "org.apache.spark.sql.delta.DeltaLog.startTransaction"
    assert missing_members(_all_but(gone).get) == [gone]
    without_class = {k: v for k, v in _all_but(gone).items() if not k.endswith("Snapshot")}
    assert "org.apache.spark.sql.delta.Snapshot" in missing_members(without_class.get)


def test_the_session_check_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = "org.apache.spark.sql.delta.DeltaOperations$Write$.apply$default$9"
    present = _all_but(gone)

    def for_name(name: str, initialize: bool, loader: object) -> SimpleNamespace:
        if name not in present:
            raise RuntimeError(f"ClassNotFoundException: {name}")
        methods = [SimpleNamespace(getName=lambda m=m: m) for m in present[name]]
        return SimpleNamespace(getMethods=lambda: methods)

    thread = SimpleNamespace(getContextClassLoader=lambda: "the context loader")
    lang = SimpleNamespace(
        Class=SimpleNamespace(forName=for_name),
        Thread=SimpleNamespace(currentThread=lambda: thread),
    )
    session = SimpleNamespace(_jvm=SimpleNamespace(java=SimpleNamespace(lang=lang)))

    monkeypatch.setattr(delta_internals, "delta_version_found", lambda spark: "9.9.9")
    with pytest.raises(DeltaInternalsChanged) as refused:
        delta_internals.check_members(session)  # type: ignore[arg-type]
    message = str(refused.value)
    assert "\n" not in message
    assert gone in message and "Delta 9.9.9" in message and "4.4.0" in message
