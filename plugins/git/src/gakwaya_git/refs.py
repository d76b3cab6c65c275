"""Which remote ref a user's branch/tag name means, the way ``git fetch`` decides.

``git ls-remote`` matches patterns against the end of ref names
(``main`` also matches ``refs/heads/feature/main``), so we ask for a superset and
pick the exact name here, in git's own order (``refs/tags/x`` before
``refs/heads/x``), preferring the peeled commit of an annotated tag.
"""

from __future__ import annotations

from collections.abc import Mapping

PEELED = "^{}"


def candidates(ref: str) -> list[str]:
    """Full ref names ``ref`` may mean, in the order git's ``fetch`` tries them."""
    if ref in ("", "HEAD"):
        return ["HEAD"]
    names = [ref] if ref.startswith("refs/") else []
    names += [
        f"refs/{ref}",
        f"refs/tags/{ref}",
        f"refs/heads/{ref}",
        f"refs/remotes/{ref}",
        f"refs/remotes/{ref}/HEAD",
    ]
    return names


def parse_ls_remote(output: str) -> dict[str, str]:
    """``{ref name: object id}`` of ``git ls-remote`` output."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        oid, _, name = line.partition("\t")
        if oid and name:
            found[name.strip()] = oid.strip()
    return found


def pick(ref: str, advertised: Mapping[str, str]) -> str | None:
    """The commit ``ref`` resolves to among ``advertised`` refs, or None."""
    for name in candidates(ref):
        if name + PEELED in advertised:
            return advertised[name + PEELED]
        if name in advertised:
            return advertised[name]
    return None
