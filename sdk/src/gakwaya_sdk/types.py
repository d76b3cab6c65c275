"""Validated names shared by the API edge and plugins.

msgspec matches patterns with Python's ``re.search``, where ``$`` also matches
before a final newline: every pattern ends in ``$(?!\n)`` so that ``"acme\n"``
is refused (the lookahead is a no-op for JSON Schema's ECMAScript regexes).

Each type carries its rule in ``description``; the kernel quotes it in the
422 response so a user learns the field and the rule in one line.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$(?!\n)"
SLUG_RULE = (
    "1 to 40 lowercase letters, digits and hyphens, starting and ending with a letter or digit"
)
Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, description=SLUG_RULE)]

DISPLAY_NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,100}$(?!\n)"
DISPLAY_NAME_RULE = "1 to 100 characters, no control characters (newlines, tabs)"
DisplayName = Annotated[
    str, msgspec.Meta(pattern=DISPLAY_NAME_PATTERN, description=DISPLAY_NAME_RULE)
]

_LOCAL_PART = r"[A-Za-z0-9_%+'][A-Za-z0-9._%+'-]{0,63}"
_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_LOCAL_PART}@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})+$(?!\n)"
EMAIL_RULE = (
    "an email address like name@example.com: letters, digits and . _ % + ' - before the @, "
    "not starting with . or -; no spaces, shell characters or control characters"
)
Email = Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN, max_length=254, description=EMAIL_RULE)]

#: pattern → human rule, for error messages about values that failed a pattern.
RULES: dict[str, str] = {
    SLUG_PATTERN: SLUG_RULE,
    DISPLAY_NAME_PATTERN: DISPLAY_NAME_RULE,
    EMAIL_PATTERN: EMAIL_RULE,
}


def describe_pattern(pattern: str) -> str:
    """The human rule for ``pattern``, or the pattern itself when none is registered."""
    return RULES.get(pattern, f"must match {pattern}")


def register_rule(pattern: str, rule: str) -> None:
    """Let a plugin name the rule behind a pattern it validates with."""
    RULES[pattern] = rule
