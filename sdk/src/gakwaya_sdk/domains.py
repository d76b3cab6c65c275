"""The rule for domain names: one definition for the API edge and for proxies.

A domain reaches a proxy's configuration, a certificate request and DNS queries. A
value that passes :func:`check_domain` is a plain host name in its IDNA ASCII form
(``xn--bcher-kva.example`` for ``bücher.example``), lower case, so it can be
compared, stored and sent anywhere without escaping.
"""

from __future__ import annotations

import re

import idna

from gakwaya_sdk.sources import RuleError

DOMAIN_RULE = (
    "a domain name: at least two labels separated by dots, each 1-63 letters, digits "
    "or hyphens (not at either end), at most 253 characters in all, not an IP "
    "address; international names are accepted and stored in their IDNA form"
)
WILDCARD_RULE = "a leading '*.' (wildcard) needs a DNS provider plugin for DNS-01 certificates"

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z][a-z0-9-]*|xn--[a-z0-9-]+)$")


def check_domain(value: str, *, wildcard: bool = False) -> str:
    """The domain's IDNA ASCII form, lower case; a leading ``*.`` only with ``wildcard``.

    Raises :class:`RuleError` with :data:`DOMAIN_RULE` (or :data:`WILDCARD_RULE`)."""
    if not isinstance(value, str) or not value or len(value) > 300 or value != value.strip():
        raise RuleError(DOMAIN_RULE)
    name = value.lower()
    if name.endswith("."):  # the root's dot of a fully qualified name
        name = name[:-1]
    prefix = ""
    if name.startswith("*."):
        if not wildcard:
            raise RuleError(WILDCARD_RULE)
        prefix, name = "*.", name[2:]
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise RuleError(DOMAIN_RULE) from exc
    labels = name.split(".")
    if (
        len(name) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or not _TLD.match(labels[-1])  # also refuses IP addresses: no numeric TLD
    ):
        raise RuleError(DOMAIN_RULE)
    if any(label.startswith("xn--") for label in labels):
        try:
            idna.decode(name)
        except (idna.IDNAError, UnicodeError) as exc:
            raise RuleError(DOMAIN_RULE) from exc
    return prefix + name
