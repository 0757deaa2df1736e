"""Values that hold secrets and do not print them by accident.

Every value Tessera hands out decrypted (a tenant secret, a resolved view's
config, a connect link, a webhook's signing secret) comes back wrapped:
``str()``, ``repr()``, f-strings, ``logging`` and tracebacks show
``[SECRET]``; ``json.dumps`` and ``pickle`` refuse it. The value is there
for whoever asks for it by name: ``reveal()``.

Python cannot wipe memory, so this protects against printing and
serialising, not against a memory dump of the process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final, NoReturn, TypeAlias, Union

JsonValue: TypeAlias = Union[str, int, float, bool, None, list["JsonValue"], dict[str, "JsonValue"]]
"""Any JSON value, as ``json.loads`` returns it."""

MASK: Final = "[SECRET]"


class Secret:
    """A secret value: prints as ``[SECRET]``; ``reveal()`` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: JsonValue) -> None:
        self._value = value

    def reveal(self) -> JsonValue:
        """The value itself (a string, or the JSON value that was stored)."""
        return self._value

    def reveal_text(self) -> str:
        """The value, which must be a string (``TypeError`` otherwise)."""
        if not isinstance(self._value, str):
            raise TypeError(f"the secret is a {type(self._value).__name__}, not a string: use reveal()")
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __reduce__(self) -> NoReturn:
        # Pickling would write the value to wherever the pickle goes (a cache, a queue).
        raise TypeError("a Secret is not serialised; reveal() it where it is used")


class ResolvedView(Mapping[str, JsonValue]):
    """The resolved view of a tenant's connection: defaults, overrides and
    credentials merged, secrets decrypted.

    A read-only mapping of the config (``view["secret_key"]``,
    ``view.get("base_url")``, ``dict(view)``): taking a value out is asking
    for it. Printed, it shows its field names with every value masked (the
    view does not say which fields are secret, so none is shown).
    """

    __slots__ = ("_config", "integration", "tenant_id")

    def __init__(self, tenant_id: str, integration: str, config: Mapping[str, JsonValue]) -> None:
        self.tenant_id = tenant_id
        self.integration = integration
        self._config = dict(config)

    def __getitem__(self, key: str) -> JsonValue:
        return self._config[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._config)

    def __len__(self) -> int:
        return len(self._config)

    def secret(self, key: str) -> Secret:
        """One field, wrapped so that it keeps not printing itself."""
        return Secret(self._config[key])

    def __repr__(self) -> str:
        fields = ", ".join(f"{k!r}: '{MASK}'" for k in self._config)
        return f"ResolvedView(tenant_id={self.tenant_id!r}, integration={self.integration!r}, config={{{fields}}})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a ResolvedView is not serialised; take the values it holds where they are used")
