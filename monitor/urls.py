"""Canonical article URLs and the stable ids derived from them.

The same article reaches us under many addresses: with ``utm_*`` and other tracking parameters, with a
fragment, with a relative link, with stray whitespace from a pretty-printed feed. :func:`canonical_url`
reduces them to one form, and :func:`article_id_for_url` hashes that form into the ``article_id`` that keys
``news.articles`` (DESIGN §4). Feeds without usable links fall back to :func:`article_id_for_guid` or
:func:`article_id_for_content`, both scoped to the feed (GUIDs are only unique within a feed, if at all).

Feed URLs may carry credentials (``https://user:password@host/feed``, ``?token=...``). They are used to
fetch and nowhere else: :func:`redact_url` is the form that may appear in records, logs, metrics and CLI
output, and :func:`redact_text` masks a URL's secrets inside a message (an error text that quotes it).
"""

from __future__ import annotations

import hashlib
import logging
import re
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

ID_LENGTH = 24
"""Hex digits of an ``article_id`` (96 bits of SHA-256)."""

# Query parameters that identify a campaign, a click or a referrer, never the article.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
        "cmpid",
        "cmp",
        "ocid",
        "ito",
        "icid",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "sr_share",
        "smid",
        "ref_src",
        "ref_url",
        "rss",
        "from",
        "feedtype",
        "fromrss",
        "spm",
        "wt_mc",
        "wt_zmc",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "mtm_", "trk_")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_SPACE = re.compile(r"\s")


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(link: str | None, base: str | None = None) -> str | None:
    """The canonical form of ``link`` (resolved against ``base``), or None when it is not a usable URL.

    Lower-case scheme and host, no default port, no fragment, no tracking parameters, the remaining
    parameters sorted, unsafe characters percent-encoded. Not usable: empty, containing spaces (feeds that
    put the headline in ``<link>``), or not ``http(s)`` with a host after resolution.
    """
    if not link:
        return None
    text = link.strip()
    if not text or _SPACE.search(text):
        return None
    if base and base.startswith(("http://", "https://")):
        try:
            text = urljoin(base, text)
        except ValueError:
            return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    netloc = host
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    query_pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    query = urlencode(sorted(query_pairs), doseq=True, quote_via=quote)
    return urlunsplit((scheme, netloc, path, query, ""))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:ID_LENGTH]


def article_id_for_url(url: str) -> str:
    """The ``article_id`` of an article known by its canonical URL (the same in every feed)."""
    return _digest("url", url)


def article_id_for_guid(feed_id: str, guid: str) -> str:
    """The ``article_id`` of an entry without a usable link, known by its GUID within its feed."""
    return _digest("guid", feed_id, guid.strip())


def article_id_for_content(feed_id: str, title: str, published: str) -> str:
    """The ``article_id`` of an entry with neither a usable link nor a usable GUID: its title and date."""
    return _digest("content", feed_id, title.casefold(), published)


# -- credentials in feed URLs ------------------------------------------------------------------------------

MASK = "***"
"""What a secret is shown as."""

# Query parameter names (lower case) whose values are secrets; names ending in one of SECRET_SUFFIXES are too.
SECRET_PARAMS = frozenset(
    {
        "token",
        "key",
        "apikey",
        "api_key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "sig",
        "signature",
        "auth",
        "access_token",
        "client_secret",
    }
)
SECRET_SUFFIXES = ("token", "secret", "password", "_key", "-key", "apikey", "signature")

_USERINFO = re.compile(r"(?P<lead>//)(?P<userinfo>[^/?#]*)@")
_ORIGIN = re.compile(r"^[^/?#]*//[^/?#]*")
_MIN_SECRET = 3  # shorter "secrets" are not masked inside free text (they would garble it)


def _is_secret_param(name: str) -> bool:
    lowered = unquote_plus(name).strip().lower()
    return lowered in SECRET_PARAMS or lowered.endswith(SECRET_SUFFIXES)


def _mask_params(query: str) -> str:
    """``query`` (or a ``#a=b`` fragment) with the values of secret-looking parameters masked."""
    pieces = []
    for piece in query.split("&"):
        name, eq, value = piece.partition("=")
        pieces.append(f"{name}={MASK}" if eq and value and _is_secret_param(name) else piece)
    return "&".join(pieces)


def _mask_userinfo(userinfo: str) -> str:
    user, colon, _password = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else MASK


def redact_url(url: str, *, path: bool = True) -> str:
    """``url`` as it may be shown: credentials masked as ``***``, everything else as it was.

    ``https://user:pw@host/f`` becomes ``https://user:***@host/f`` (the user stays: it says which account);
    a user alone, ``https://abc123@host/f``, is often a token and becomes ``https://***@host/f``. Query (and
    fragment) parameters named like secrets (:data:`SECRET_PARAMS`, or ending in :data:`SECRET_SUFFIXES`:
    ``token``, ``api_key``, ``sig``...) keep their name and lose their value: ``?token=***``. With ``path``
    false, the path, query and fragment are all replaced by ``/***`` (webhooks often carry their secret
    in the path). A URL with nothing to mask is returned unchanged, character for character, so whatever
    is derived from the redacted form of a URL without credentials (a feed id, a state key) is as before.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        # Not parseable (a broken IPv6 literal...): mask any userinfo and secret parameters textually.
        masked = _USERINFO.sub(lambda m: f"{m['lead']}{_mask_userinfo(m['userinfo'])}@", url, count=1)
        if not path:
            origin = _ORIGIN.match(masked)
            return f"{origin[0]}/{MASK}" if origin else MASK
        head, q, tail = masked.partition("?")
        return f"{head}{q}{_mask_params(tail)}" if q else masked
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{_mask_userinfo(userinfo)}@{hostport}" if at else parts.netloc
    if not path:
        rest = f"/{MASK}" if (parts.path not in ("", "/") or parts.query or parts.fragment) else parts.path
        return urlunsplit((parts.scheme, netloc, rest, "", ""))
    query = _mask_params(parts.query)
    fragment = _mask_params(parts.fragment) if "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"//{netloc}{parts.path}"
    if query:
        text += f"?{query}"
    if fragment:
        text += f"#{fragment}"
    return text


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its ``user:password@``, and the (percent-decoded) user and password, if any.

    A user alone gives an empty password (what HTTP clients send for ``https://token@host/``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    userinfo, at, hostport = parts.netloc.rpartition("@")
    start = url.find("//") + 2
    if not at or start < 2 or not url.startswith(parts.netloc, start):
        return url, None
    user, _, password = userinfo.partition(":")
    bare = url[:start] + hostport + url[start + len(parts.netloc) :]
    return bare, (unquote(user), unquote(password))


def url_secrets(url: str) -> tuple[str, ...]:
    """The secret parts of ``url`` (password, lone user, secret parameter values), raw and decoded."""
    try:
        parts = urlsplit(url)
        netloc, queries = parts.netloc, [parts.query, parts.fragment]
    except ValueError:
        match = _USERINFO.search(url)
        netloc = f"{match['userinfo']}@" if match else ""
        queries = [url.partition("?")[2]]
    found: list[str] = []
    userinfo, at, _ = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    for query in queries:
        for piece in query.split("&"):
            name, eq, value = piece.partition("=")
            if eq and value and _is_secret_param(name):
                found.append(value)
    out: list[str] = []
    for secret in found:
        for form in (secret, unquote(secret), unquote_plus(secret)):
            if form and form not in out:
                out.append(form)
    # Longest first, so that a secret containing another is masked whole.
    return tuple(sorted(out, key=len, reverse=True))


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message, say) with ``url`` shown redacted and each of its secrets masked.

    Secrets shorter than three characters are masked only where the whole URL appears."""
    if url in text:
        text = text.replace(url, redact_url(url))
    for secret in url_secrets(url):
        if len(secret) >= _MIN_SECRET:
            text = text.replace(secret, MASK)
    return text


class RedactUrlArgs(logging.Filter):
    """A logging filter that redacts the URLs among a record's arguments (:func:`redact_url`).

    For third-party loggers that print request URLs (httpx logs ``HTTP Request: GET <url>`` at INFO): an
    argument that reads as an ``http(s)://`` URL is replaced by its redacted form, or by its scheme and host
    alone when it is one of the URLs registered with :meth:`hide_path` (a webhook's).
    """

    def __init__(self) -> None:
        super().__init__()
        self._opaque: tuple[str, ...] = ()  # replaced whole, never mutated: other threads read it

    def hide_path(self, url: str) -> None:
        """Show ``url`` (when it is logged) without its path: its secret may be there."""
        if url not in self._opaque:
            self._opaque = (*self._opaque, url)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(self._redacted(arg) for arg in record.args)
        return True

    def _redacted(self, arg: object) -> object:
        if isinstance(arg, int | float):
            return arg
        text = str(arg)
        if not text.startswith(("http://", "https://")):
            return arg
        if any(text.startswith(url) for url in self._opaque):
            return redact_url(text, path=False)
        shown = redact_url(text)
        return arg if shown == text else shown


HTTP_LOG_FILTER = RedactUrlArgs()
"""The filter attached to httpx's logger by the fetcher and the webhook sink (see :func:`protect_logger`)."""


def protect_logger(name: str = "httpx") -> RedactUrlArgs:
    """Attach :data:`HTTP_LOG_FILTER` to the logger ``name`` (idempotent); returns the filter."""
    logging.getLogger(name).addFilter(HTTP_LOG_FILTER)
    return HTTP_LOG_FILTER


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute ``http(s)://`` URL with a host (and, if any, a valid port)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
