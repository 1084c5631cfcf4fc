"""The India-US relevance gate: a cheap, high-recall keyword test run before an article is published.

The scorer's model decides relevance later; this gate only keeps out what is clearly about neither side of
the relationship (a Bihar election result, an EU-US trade deal). It looks for an India side (the country,
its places, institutions, markets and leaders) and a US side (the country, its government, its leaders),
and for bilateral markers (``India-US``, the Quad, H-1B, iCET). An article needs both sides, or a bilateral
marker, to pass.

``relevance_hint(title, summary)`` is a score in [0, 1] carried on ``ArticleFetched.relevance_hint``;
``gate(title, summary)`` returns the decision with the reason. Both are pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.5

# The India side. Case-insensitive unless noted; matched on word boundaries.
_INDIA_TERMS = (
    r"india",
    r"indian",
    r"indians",
    r"bharat",
    r"new delhi",
    r"delhi",
    r"mumbai",
    r"bengaluru",
    r"bangalore",
    r"chennai",
    r"kolkata",
    r"hyderabad",
    r"ahmedabad",
    r"pune",
    r"amritsar",
    r"punjab",
    r"tamil nadu",
    r"kerala",
    r"gujarat",
    r"andhra",
    r"andhra pradesh",
    r"telangana",
    r"karnataka",
    r"maharashtra",
    r"bihar",
    r"uttar pradesh",
    r"kashmir",
    r"tiruppur",
    r"tirupur",
    r"surat",
    r"noida",
    r"gurugram",
    r"gurgaon",
    r"modi",
    r"narendra modi",
    r"jaishankar",
    r"piyush goyal",
    r"goyal",
    r"doval",
    r"rajnath",
    r"sitharaman",
    r"vikram misri",
    r"misri",
    r"kwatra",
    r"rahul gandhi",
    r"lok sabha",
    r"rajya sabha",
    r"bjp",
    r"isro",
    r"drdo",
    r"sensex",
    r"nifty",
    r"rupee",
    r"rupees",
    r"infosys",
    r"wipro",
    r"tata",
    r"reliance industries",
    r"adani",
    r"mahindra",
    r"ongc",
    r"niti aayog",
    r"reserve bank of india",
    r"chandrayaan",
    r"gaganyaan",
)
_INDIA_CASED = (r"RBI", r"MEA", r"HAL", r"TCS", r"IAF")

# The US side.
_US_TERMS = (
    r"united states",
    r"u\.s\.a?\.?",
    r"america",
    r"american",
    r"americans",
    r"washington",
    r"trump",
    r"donald trump",
    r"biden",
    r"obama",
    r"white house",
    r"pentagon",
    r"state department",
    r"capitol hill",
    r"us congress",
    r"u\.s\. congress",
    r"nasa",
    r"ustr",
    r"usaid",
    r"rubio",
    r"marco rubio",
    r"lutnick",
    r"bessent",
    r"hegseth",
    r"jamieson greer",
    r"greer",
    r"navarro",
    r"sergio gor",
    r"garcetti",
    r"blinken",
    r"jake sullivan",
    r"jd vance",
    r"vance",
    r"kamala harris",
    r"silicon valley",
    r"wall street",
    r"new york",
    r"california",
    r"texas",
)
_US_CASED = (r"US", r"USA", r"FBI", r"CIA")

# Bilateral markers: the relationship itself, or its institutions and recurring subjects.
_BILATERAL = (
    r"(?:india|indian|new delhi|delhi)\s*[-–—/&]\s*(?:u\.?s\.?a?|united states|america|american|washington)",
    r"(?:u\.?s\.?a?|united states|america|washington)\s*[-–—/&]\s*(?:india|indian|new delhi|delhi)",
    r"indo[-–\s]+(?:us|u\.s\.|american|pacific)",
    r"(?:india|new delhi)\s*,?\s*(?:and|,)\s*(?:the\s+)?(?:u\.?s\.?a?|united states|america|washington)",
    r"(?:u\.?s\.?a?|united states|america|washington)\s*,?\s*(?:and|,)\s*(?:india|new delhi)",
    r"modi\s*[-–—/&]\s*trump",
    r"trump\s*[-–—/&]\s*modi",
    r"indian[-\s]americans?",
    r"quad summit",
    r"quad (?:foreign|leaders|nations|countries|grouping)",
    r"icet",
    r"trust initiative",
    r"h-?1b",
    r"indo-pacific",
)
_BILATERAL_CASED = (r"Quad", r"QUAD", r"iCET")


def _compile(terms: tuple[str, ...], cased: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    folded = re.compile(
        r"(?<![\w])(?:" + "|".join(sorted(terms, key=len, reverse=True)) + r")(?![\w])", re.IGNORECASE
    )
    exact = re.compile(r"(?<![\w.])(?:" + "|".join(cased) + r")(?![\w])")
    return folded, exact


_INDIA = _compile(_INDIA_TERMS, _INDIA_CASED)
_US = _compile(_US_TERMS, _US_CASED)
_BILAT = (
    re.compile(r"(?<![\w])(?:" + "|".join(_BILATERAL) + r")(?![\w])", re.IGNORECASE),
    re.compile(r"(?<![\w])(?:" + "|".join(_BILATERAL_CASED) + r")(?![\w])"),
)


def _mentions(patterns: tuple[re.Pattern[str], re.Pattern[str]], text: str) -> bool:
    folded, exact = patterns
    return bool(folded.search(text) or exact.search(text))


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether an article passes the gate, its hint, and why (``bilateral``, ``both``, ``india``...)."""

    keep: bool
    hint: float
    reason: str


def _assess(title: str, summary: str) -> tuple[float, str]:
    text = f"{title}\n{summary}"
    india_title, us_title = _mentions(_INDIA, title), _mentions(_US, title)
    india = india_title or _mentions(_INDIA, summary)
    us = us_title or _mentions(_US, summary)
    bilateral = _mentions(_BILAT, text)
    if bilateral and india and us:
        return (1.0 if _mentions(_BILAT, title) else 0.95), "bilateral"
    if india and us:
        return (0.9 if india_title and us_title else 0.8), "both"
    if bilateral:
        return 0.7, "bilateral marker"
    if india:
        return 0.2, "india only"
    if us:
        return 0.15, "us only"
    return 0.0, "neither"


def relevance_hint(title: str, summary: str) -> float:
    """A cheap score in [0, 1] that the article concerns India-US relations (1: says so outright)."""
    return _assess(title or "", summary or "")[0]


def gate(title: str, summary: str, *, threshold: float = DEFAULT_THRESHOLD) -> GateDecision:
    """The gate's decision: keep when the hint reaches ``threshold`` (both sides or a bilateral marker)."""
    hint, reason = _assess(title or "", summary or "")
    return GateDecision(keep=hint >= threshold, hint=hint, reason=reason)
