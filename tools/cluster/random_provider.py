"""A stand-in for the ``random`` resource plugin, for the local cluster only.

The program creates ``random.RandomPassword`` resources (pulumi-random). Their real plugin,
``pulumi-resource-random``, is built from ``github.com/pulumi/pulumi-random/provider/v4``, which
the Go module proxy this project can reach does not serve at any release commit
(docs/local-cluster.md). So that the real engine can still deploy the real program onto the
local cluster, this plugin serves the one resource the program uses, with the behaviour the
program relies on:

- ``result`` is ``length`` characters from the classes asked for (upper, lower, numeric,
  special), at least ``min*`` of each, drawn with :mod:`secrets`; the SDK marks it secret;
- any change of an input replaces the password (as pulumi-random does: it has no update);
- a preview reports ``result`` as unknown, the refresh reads back what the state holds.

It is installed by ``tools/cluster/pulumi_env.py`` as plugin ``random`` at the version the SDK
asks for. Production stacks run the real plugin, downloaded by the Pulumi CLI as usual.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import sys
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from google.protobuf.json_format import MessageToDict
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

RESOURCE_TYPE = "random:index/randomPassword:RandomPassword"
#: The engine's marker for a value that is not known until the resource is created.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
#: pulumi-random's own default for the special characters.
DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
DEFAULTS: dict[str, Any] = {
    "upper": True, "lower": True, "numeric": True, "special": True,
    "minUpper": 0, "minLower": 0, "minNumeric": 0, "minSpecial": 0,
}


def checked_inputs(news: dict[str, Any]) -> tuple[dict[str, Any], list[provider_pb2.CheckFailure]]:
    """The inputs with pulumi-random's defaults filled in, or what is wrong with them."""
    inputs = {**DEFAULTS, **news}
    failures = []
    length = inputs.get("length")
    if not isinstance(length, (int, float)) or length < 1:
        failures.append(provider_pb2.CheckFailure(property="length", reason="length must be at least 1"))
    elif sum(inputs[f"min{c}"] for c in ("Upper", "Lower", "Numeric", "Special")) > length:
        failures.append(provider_pb2.CheckFailure(property="length", reason="length is below the sum of the minimums"))
    return inputs, failures


def password(inputs: dict[str, Any]) -> str:
    """``length`` characters with at least ``min*`` of each class asked for, in random order."""
    classes = {
        "Upper": string.ascii_uppercase, "Lower": string.ascii_lowercase, "Numeric": string.digits,
        "Special": inputs.get("overrideSpecial") or DEFAULT_SPECIAL,
    }
    wanted = {name: chars for name, chars in classes.items() if inputs[name.lower()]}
    chars = [secrets.choice(alphabet) for name, alphabet in wanted.items() for _ in range(int(inputs[f"min{name}"]))]
    alphabet = "".join(wanted.values())
    chars += [secrets.choice(alphabet) for _ in range(int(inputs["length"]) - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def as_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


class RandomProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, version: str) -> None:
        self.version = version

    async def GetPluginInfo(self, request: empty_pb2.Empty, context: Any) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=self.version)

    async def GetSchema(self, request: Any, context: Any) -> provider_pb2.GetSchemaResponse:
        return provider_pb2.GetSchemaResponse(schema="{}")

    async def CheckConfig(self, request: Any, context: Any) -> provider_pb2.CheckResponse:
        return provider_pb2.CheckResponse(inputs=request.news)

    async def DiffConfig(self, request: Any, context: Any) -> provider_pb2.DiffResponse:
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    async def Configure(self, request: Any, context: Any) -> provider_pb2.ConfigureResponse:
        return provider_pb2.ConfigureResponse(acceptSecrets=False, supportsPreview=True)

    async def Check(self, request: Any, context: Any) -> provider_pb2.CheckResponse:
        self._known_type(request.type or request.urn.split("::")[-2], context)
        inputs, failures = checked_inputs(MessageToDict(request.news))
        return provider_pb2.CheckResponse(inputs=as_struct(inputs), failures=failures)

    async def Diff(self, request: Any, context: Any) -> provider_pb2.DiffResponse:
        olds = MessageToDict(request.old_inputs) or MessageToDict(request.olds)
        news = MessageToDict(request.news)
        inputs = (set(olds) | set(news)) - {"result", "bcryptHash"}
        changed = sorted(key for key in inputs if olds.get(key) != news.get(key))
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_SOME, replaces=changed)

    async def Create(self, request: Any, context: Any) -> provider_pb2.CreateResponse:
        inputs = MessageToDict(request.properties)
        result = UNKNOWN if request.preview else password(inputs)
        return provider_pb2.CreateResponse(id="none", properties=as_struct({**inputs, "result": result}))

    async def Read(self, request: Any, context: Any) -> provider_pb2.ReadResponse:
        return provider_pb2.ReadResponse(id=request.id, properties=request.properties, inputs=request.inputs)

    async def Update(self, request: Any, context: Any) -> provider_pb2.UpdateResponse:
        # Every change replaces (Diff), so an update only carries the state over.
        return provider_pb2.UpdateResponse(properties=request.olds)

    async def Delete(self, request: Any, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    async def Cancel(self, request: Any, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    @staticmethod
    def _known_type(resource_type: str, context: Any) -> None:
        if resource_type != RESOURCE_TYPE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          f"{resource_type}: the local stand-in for the random plugin serves {RESOURCE_TYPE} only")


async def serve(version: str) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)])
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(RandomProvider(version), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    # The plugin protocol: the first line on stdout is the port the engine dials.
    print(port, flush=True)
    await server.wait_for_termination()


def main() -> None:
    # The engine passes its own address as an argument too; this plugin never calls back.
    version = next((arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("--plugin-version=")), "0.0.0")
    asyncio.run(serve(version))


if __name__ == "__main__":
    main()
