"""What the models share."""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class OmitNone(BaseModel):
    """Fields that are None are left out of dumps, as serde's ``skip_serializing_if`` does.

    Those named in `_always_written` are written all the same.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    _always_written: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> Any:
        return {
            key: value
            for key, value in handler(self).items()
            if value is not None or key in self._always_written
        }


def without_absent(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """`data` without those of `keys` whose value is None.

    For fields added after the seed's: left out when absent, the dump is the seed's.
    """
    for key in keys:
        if data.get(key) is None:
            data.pop(key, None)
    return data
