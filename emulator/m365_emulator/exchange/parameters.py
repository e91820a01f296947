"""Cmdlet parameters and their binding, the way PowerShell binds them: case-insensitive names, unique prefixes,
typed values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .errors import TRANSFORMATION_TYPE, VALIDATION_TYPE, binding_error

@dataclass(frozen=True)
class Parameter:
    """One cmdlet parameter: ``kind`` decides which JSON values bind; ``choices`` limits string values."""

    name: str
    kind: str  # "string", "bool", "result_size", "rights", "guid", "multi" (a MultiValuedProperty)
    mandatory: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()


def _type_name(value: Any) -> str:
    return {str: "System.String", bool: "System.Boolean", int: "System.Int32", float: "System.Double",
            list: "System.Object[]", dict: "System.Collections.Hashtable"}.get(type(value), "System.Object")


def _convert(parameter: Parameter, value: Any) -> Any:
    name = parameter.name
    if value is None:
        if parameter.nullable:
            return None
        raise binding_error(f"Cannot validate argument on parameter '{name}'. The argument is null. Provide a valid "
                            f"value for the argument, and then try running the command again.", VALIDATION_TYPE)
    if parameter.kind == "bool":
        # PowerShell binds booleans from booleans and numbers only; "true" as a string is refused.
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                            f"\"{_type_name(value)}\" to type \"System.Boolean\". Boolean parameters accept only "
                            f"Boolean values and numbers, such as $True, $False, 1 or 0.", TRANSFORMATION_TYPE)
    if parameter.kind == "result_size":
        if isinstance(value, str) and value.strip().lower() == "unlimited":
            return None
        number = value
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                                f"\"{value}\" to type \"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\". "
                                f"Use a positive number or 'Unlimited'.", TRANSFORMATION_TYPE)
        return number
    if parameter.kind == "multi":
        # A MultiValuedProperty binds one string or an array of them; PowerShell does not split a string on commas.
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert the "
                                f"\"{_type_name(value)}\" value to type \"Microsoft.Exchange.Data."
                                f"MultiValuedProperty`1[System.String]\".", TRANSFORMATION_TYPE)
        return [item.strip() for item in items if item.strip()]
    if parameter.kind == "rights":
        items = value if isinstance(value, list) else [value]
        rights = []
        for item in items:
            words = item.split(",") if isinstance(item, str) else [item]
            for word in words:
                match = next((choice for choice in parameter.choices
                              if isinstance(word, str) and choice.lower() == word.strip().lower()), None)
                if match is None:
                    raise binding_error(f"Cannot bind parameter '{name}'. Cannot convert value \"{word}\" to type "
                                        f"\"Microsoft.Exchange.Management.RecipientTasks.MailboxRights\". Error: "
                                        f"\"The valid values are: {', '.join(parameter.choices)}.\"",
                                        TRANSFORMATION_TYPE)
                if match not in rights:
                    rights.append(match)
        return rights
    if not isinstance(value, str):
        raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert the "
                            f"\"{_type_name(value)}\" value to type \"System.String\".", TRANSFORMATION_TYPE)
    if parameter.kind == "guid":
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                                f"\"{value}\" to type \"System.Guid\". Error: \"Guid should contain 32 digits with "
                                f"4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).\"", TRANSFORMATION_TYPE) from None
    if parameter.choices:
        match = next((choice for choice in parameter.choices if choice.lower() == value.lower()), None)
        if match is None:
            raise binding_error(f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
                                f"\"{name}\". Error: \"The valid values are: {', '.join(parameter.choices)}.\"",
                                TRANSFORMATION_TYPE)
        return match
    return value


def bind(cmdlet: str, parameters: list[Parameter], given: dict[str, Any]) -> dict[str, Any]:
    """Bind JSON parameters the way PowerShell does: case-insensitive names, unique prefixes, typed values."""
    bound: dict[str, Any] = {}
    for raw_name, value in given.items():
        wanted = raw_name.lstrip("-").lower()
        exact = [p for p in parameters if p.name.lower() == wanted]
        candidates = exact or [p for p in parameters if p.name.lower().startswith(wanted)] if wanted else []
        if not candidates:
            raise binding_error(f"A parameter cannot be found that matches parameter name '{raw_name}'.")
        if len(candidates) > 1:
            names = " ".join(f"-{p.name}" for p in candidates)
            raise binding_error(f"Parameter cannot be processed because the parameter name '{raw_name}' is ambiguous. "
                                f"Possible matches include: {names}.")
        parameter = candidates[0]
        if parameter.name in bound:
            raise binding_error(f"Cannot bind parameter because parameter '{parameter.name}' is specified more than "
                                f"once.")
        bound[parameter.name] = _convert(parameter, value)
    missing = [p.name for p in parameters if p.mandatory and p.name not in bound]
    if missing:
        raise binding_error(f"Cannot process command because of one or more missing mandatory parameters: "
                            f"{' '.join(missing)}.")
    return bound
