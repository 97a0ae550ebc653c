"""URLs as agenttts shows and records them: never with a password.

A secret belongs in the environment (`PGPASSWORD` or `~/.pgpass` for PostgreSQL, the variable an
endpoint's `api_key_env` names); one written into a URL (`http://user:secret@host/v1`,
`postgresql://u:pw@db/x`, `?password=...`) is masked by `masked` wherever agenttts prints, logs or
records the URL: error lines, retry lines, checkpoints, reports, the sample cache's keys. A
recorded URL therefore cannot connect again (`lost_password`): the run asks for it once more.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
#: Query parameters that hold a secret.
SECRET_PARAMS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "access_token", "api_key", "apikey", "key"}
)


def masked(url: str) -> str:
    """`url` without its secrets: the password of its user part and secret query parameters
    become `***`; anything that is no URL with a host comes back as it is."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL (a bad port, an odd netloc): nothing to find in it
        return url
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
        query = urlencode(
            [(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    else:
        query = parts.query
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def lost_password(url: str) -> bool:
    """Whether `url` is a masked one (a recorded URL whose password agenttts did not keep)."""
    try:
        return urlsplit(url).password == MASK
    except ValueError:
        return False
