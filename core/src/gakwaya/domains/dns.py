"""The TXT lookup that proves a domain's ownership.

Asked of the ``dns_resolver`` setting's server (challtestsrv in tests, a recursive
resolver in production) or the system's, with a short time limit: it runs in a
request and in the reconciler. The outcome says what was looked up, where, and what
was seen, which is what a user needs to fix their record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dns.exception
import dns.resolver

if TYPE_CHECKING:
    from gakwaya.settings import Settings

#: Seconds one lookup may take in all (retries included).
LOOKUP_SECONDS = 3.0


@dataclass
class TxtLookup:
    record: str
    server: str
    #: Every TXT value found (each record's strings joined).
    values: list[str] = field(default_factory=list)
    #: Why nothing could be read ("" when the server answered).
    problem: str = ""

    def has(self, token: str) -> bool:
        return token in self.values

    def describe(self, token: str) -> str:
        """What was looked up and seen, for the user."""
        seen = (
            self.problem
            if self.problem
            else ("found " + ", ".join(repr(v[:100]) for v in self.values[:5]))
            if self.values
            else "found no TXT record"
        )
        return f"TXT {self.record} (asked {self.server}): {seen}; expected the value {token!r}"


def _resolver(settings: Settings) -> tuple[dns.resolver.Resolver, str]:
    address = settings.dns_address
    if address is None:
        resolver = dns.resolver.Resolver(configure=True)
        where = "the system's resolvers"
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [address[0]]
        resolver.port = address[1]
        where = (
            f"{address[0]}:{address[1]}"
            if ":" not in address[0]
            else f"[{address[0]}]:{address[1]}"
        )
    resolver.lifetime = LOOKUP_SECONDS
    resolver.timeout = LOOKUP_SECONDS
    resolver.cache = None
    return resolver, where


def lookup_txt(settings: Settings, record: str) -> TxtLookup:
    """The TXT values at ``record`` (a name checked by the caller)."""
    try:
        resolver, where = _resolver(settings)
    except dns.resolver.NoResolverConfiguration:
        return TxtLookup(record, "the system's resolvers", problem="no DNS resolver is configured")
    found = TxtLookup(record, where)
    try:
        answer = resolver.resolve(record, "TXT", search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        found.problem = "no such name (NXDOMAIN)"
    except dns.resolver.NoNameservers as exc:
        found.problem = f"no DNS server could answer ({exc})"[:300]
    except dns.exception.Timeout:
        found.problem = f"no answer within {LOOKUP_SECONDS:g} s"
    except dns.exception.DNSException as exc:
        found.problem = f"lookup failed ({exc})"[:300]
    else:
        for rdata in answer.rrset or []:
            strings = getattr(rdata, "strings", ())
            found.values.append(b"".join(strings).decode("utf-8", "replace"))
    return found
