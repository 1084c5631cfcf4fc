"""Canonical article URLs and the stable ids derived from them.

The same article reaches us under many addresses: with ``utm_*`` and other tracking parameters, with a
fragment, with a relative link, with stray whitespace from a pretty-printed feed. :func:`canonical_url`
reduces them to one form, and :func:`article_id_for_url` hashes that form into the ``article_id`` that keys
``news.articles`` (DESIGN §4). Feeds without usable links fall back to :func:`article_id_for_guid` or
:func:`article_id_for_content`, both scoped to the feed (GUIDs are only unique within a feed, if at all).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

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
