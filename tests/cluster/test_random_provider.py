"""The local stand-in for the random plugin behaves as pulumi-random does for what the program uses."""

from __future__ import annotations

import asyncio
import string
from typing import Any

from google.protobuf.struct_pb2 import Struct
from pulumi.runtime.proto import provider_pb2 as proto

from tools.cluster.random_provider import UNKNOWN, RandomProvider, as_struct, checked_inputs, password


def test_passwords_have_the_length_and_only_the_classes_asked_for():
    inputs, failures = checked_inputs({"length": 48, "special": False})
    assert failures == []
    results = {password(inputs) for _ in range(50)}
    assert len(results) == 50  # drawn anew each time
    for result in results:
        assert len(result) == 48 and set(result) <= set(string.ascii_letters + string.digits)


def test_minimums_are_met_and_impossible_ones_refused():
    inputs, _ = checked_inputs({"length": 8, "minUpper": 2, "minNumeric": 2, "minSpecial": 2})
    for _ in range(50):
        result = password(inputs)
        assert sum(c.isupper() for c in result) >= 2 and sum(c.isdigit() for c in result) >= 2
        assert sum(not c.isalnum() for c in result) >= 2
    _, failures = checked_inputs({"length": 3, "minUpper": 2, "minNumeric": 2})
    assert [f.property for f in failures] == ["length"]
    _, failures = checked_inputs({"length": 0})
    assert [f.property for f in failures] == ["length"]


def call(method: str, request: Any) -> Any:
    # A loop of its own, never the thread's current one: the mocks of other tests use that.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(getattr(RandomProvider("4.21.4"), method)(request, None))
    finally:
        loop.close()


def test_any_input_change_replaces_and_none_keeps_the_password():
    old = {"length": 48.0, "special": False, "result": "x" * 48}
    same = call("Diff", proto.DiffRequest(olds=as_struct(old), news=as_struct({"length": 48.0, "special": False})))
    assert same.changes == proto.DiffResponse.DIFF_NONE
    longer = call("Diff", proto.DiffRequest(olds=as_struct(old), news=as_struct({"length": 64.0, "special": False})))
    assert longer.changes == proto.DiffResponse.DIFF_SOME and list(longer.replaces) == ["length"]


def test_a_preview_does_not_draw_a_password():
    created = call("Create", proto.CreateRequest(properties=as_struct({"length": 12.0}), preview=True))
    assert created.properties["result"] == UNKNOWN
    checked = call("Check", proto.CheckRequest(urn="urn:pulumi:s::p::random:index/randomPassword:RandomPassword::x",
                                               type="random:index/randomPassword:RandomPassword",
                                               news=as_struct({"length": 12.0})))
    real = call("Create", proto.CreateRequest(properties=checked.inputs))
    assert len(real.properties["result"]) == 12 and real.id == "none"
    assert isinstance(real.properties, Struct)
