"""Tool specifications as llmx declares them (the seed's `ToolSpec` and `JsonSchema`)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from llmx_replay.models._base import OmitNone


class _Schema(OmitNone):
    """A JSON schema node; unset optional keys are left out when dumped, as serde does."""

    # Keywords llmx's schema type does not know (enum, default, ...) are dropped, as serde
    # drops them: the request shows what llmx would really send.
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        serialize_by_alias=True,
        defer_build=True,
    )

    description: str | None = None


class BooleanSchema(_Schema):
    """A ``boolean`` JSON schema."""

    type: Literal["boolean"] = "boolean"


class StringSchema(_Schema):
    """A ``string`` JSON schema."""

    type: Literal["string"] = "string"


class NumberSchema(_Schema):
    """`number`; llmx also reads `integer` as this, and writes it back as `number`."""

    type: Literal["number"] = "number"

    @model_validator(mode="before")
    @classmethod
    def _integer_is_number(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type") == "integer":
            return {**value, "type": "number"}
        return value


class ArraySchema(_Schema):
    """An ``array`` JSON schema whose every item has the schema `items`."""

    type: Literal["array"] = "array"
    items: "JsonSchema"


class ObjectSchema(_Schema):
    """An ``object`` JSON schema; its properties go out sorted by name, as the seed sends them."""

    type: Literal["object"] = "object"
    properties: dict[str, "JsonSchema"]
    required: list[str] | None = None
    additional_properties: "bool | JsonSchema | None" = Field(
        default=None, alias="additionalProperties"
    )

    @model_validator(mode="after")
    def _sort_properties(self) -> "ObjectSchema":
        # The seed keeps properties in a BTreeMap, so they go out sorted by name.
        object.__setattr__(self, "properties", dict(sorted(self.properties.items())))
        return self


def _schema_tag(value: Any) -> Any:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "number" if tag == "integer" else tag


JsonSchema = Annotated[
    Annotated[BooleanSchema, Tag("boolean")]
    | Annotated[StringSchema, Tag("string")]
    | Annotated[NumberSchema, Tag("number")]
    | Annotated[ArraySchema, Tag("array")]
    | Annotated[ObjectSchema, Tag("object")],
    Discriminator(_schema_tag),
]


class _Tool(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class FunctionTool(_Tool):
    """A function tool the model may call, with the JSON schema of its parameters."""

    type: Literal["function"] = "function"
    name: str
    description: str = ""
    strict: bool = False
    parameters: JsonSchema


class LocalShellTool(_Tool):
    """The local shell tool; it has no Chat form, so requests leave it out."""

    type: Literal["local_shell"] = "local_shell"


class WebSearchTool(_Tool):
    """The web search tool; it has no Chat form, so requests leave it out."""

    type: Literal["web_search"] = "web_search"


class FreeformFormat(_Tool):
    """The grammar of a freeform tool's input: its `syntax` and `definition`."""

    type: str
    syntax: str
    definition: str


class FreeformTool(_Tool):
    """A custom tool taking free text in `format`; it has no Chat form, so requests leave it out."""

    type: Literal["custom"] = "custom"
    name: str
    description: str = ""
    format: FreeformFormat


ToolSpec = Annotated[
    FunctionTool | LocalShellTool | WebSearchTool | FreeformTool, Field(discriminator="type")
]
