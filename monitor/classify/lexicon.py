"""Word lists, the lexical features the heads combine with the encoder, and the rule baselines.

The lists are written from the label guide (DESIGN §3), not fitted to any evaluation file. They serve
twice: as cheap features beside the sentence embedding (an India term AND a US term, topic keyword hits,
strain and cooperation words) and as :class:`RuleClassifier`, the keyword baselines the issue measures
(India term + US term for relevance, keyword lists per topic, a tone lexicon for stance).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor import __version__
from monitor.classify.base import Classifier, Scores, TextItem
from monitor.classify.text import clean, item_sentences
from monitor.events import TOPICS, ModelInfo, StanceLabel


def _compile(terms: Sequence[str]) -> re.Pattern[str]:
    """One pattern for ``terms``: words matched whole; all-caps acronyms case-sensitively."""
    exact: list[str] = []
    folded: list[str] = []
    for term in terms:
        body = re.escape(term).replace(r"\*", r"\w*").replace(r"\ ", r"[\s-]+")
        if term.isupper() or "." in term:
            exact.append(body)
        else:
            folded.append(body)
    parts = []
    if exact:
        parts.append("(?-i:" + "|".join(exact) + ")")
    if folded:
        parts.append("|".join(folded))
    return re.compile(r"(?<![\w])(?:" + "|".join(parts) + r")(?![\w])", re.IGNORECASE)


INDIA_TERMS = (
    "India",
    "Indian",
    "Indians",
    "New Delhi",
    "Delhi",
    "Modi",
    "Jaishankar",
    "Goyal",
    "Rajnath",
    "Doval",
    "Sitharaman",
    "Misri",
    "Kwatra",
    "MEA",
    "ISRO",
    "Isro",
    "DRDO",
    "Bharat",
)
US_TERMS = (
    "US",
    "U.S.",
    "U.S",
    "USA",
    "United States",
    "America",
    "American",
    "Americans",
    "Washington",
    "Trump",
    "Biden",
    "White House",
    "Pentagon",
    "State Department",
    "Rubio",
    "Lutnick",
    "Greer",
    "Hegseth",
    "Vance",
    "Bessent",
    "Landau",
    "Sergio Gor",
    "Garcetti",
    "NASA",
    "Nasa",
    "USTR",
    "Capitol Hill",
    "US-India",
)
# Institutions, companies and places that (nearly) only Indian, or only American, stories name.
INDIA_NAMES = (
    "Lok Sabha",
    "Rajya Sabha",
    "crore",
    "lakh",
    "rupee",
    "rupees",
    "HAL",
    "Hindustan Aeronautics",
    "NPCIL",
    "Reliance",
    "Tata",
    "Adani",
    "Infosys",
    "Wipro",
    "Mumbai",
    "Bengaluru",
    "Bangalore",
    "Chennai",
    "Hyderabad",
    "Kolkata",
    "Tamil Nadu",
    "Andhra Pradesh",
    "Gujarat",
    "Kerala",
    "Karnataka",
    "Maharashtra",
    "Kashmir",
    "Ladakh",
    "Visakhapatnam",
    "Assam",
    "Tiruppur",
    "IAF",
    "Tejas",
    "Vaishnaw",
)
US_NAMES = (
    "Senate",
    "Senator",
    "House of Representatives",
    "Homeland Security",
    "Commerce Department",
    "Justice Department",
    "Treasury",
    "federal judge",
    "Manhattan",
    "New York",
    "California",
    "Texas",
    "Houston",
    "Arizona",
    "DFC",
    "GE",
    "GE Aerospace",
    "Boeing",
    "Lockheed",
    "Westinghouse",
    "Holtec",
    "Google",
    "Microsoft",
    "Apple",
    "Amazon",
    "Nvidia",
    "Micron",
    "SpaceX",
    "First Solar",
    "Qualcomm",
    "Chevron",
    "ExxonMobil",
)
JOINT_TERMS = ("Quad", "iCET", "INDUS-X", "US-India", "India-US", "Indo-US")
"""Names of bilateral or joint frameworks that India and the US both belong to."""
OTHER_PARTY_TERMS = (
    "China",
    "Chinese",
    "Beijing",
    "Pakistan",
    "Pakistani",
    "Islamabad",
    "EU",
    "European Union",
    "Brussels",
    "UK",
    "Britain",
    "British",
    "London",
    "Canada",
    "Canadian",
    "Ottawa",
    "Mexico",
    "Japan",
    "Japanese",
    "Germany",
    "France",
    "Bangladesh",
    "Nepal",
    "Sri Lanka",
)

TOPIC_TERMS: dict[str, tuple[str, ...]] = {
    "trade_tariffs": (
        "tariff",
        "tariffs",
        "trade deal",
        "trade agreement",
        "trade pact",
        "trade talks",
        "trade negotiations",
        "BTA",
        "bilateral trade",
        "market access",
        "duty",
        "duties",
        "export*",
        "import*",
        "trade deficit",
        "trade surplus",
        "USTR",
        "WTO",
        "levy",
        "levies",
        "reciprocal",
        "investment",
        "investments",
        "investor*",
        "commerce minister",
        "commerce secretary",
        "trade representative",
        "GSP",
        "dumping",
        "trade",
    ),
    "critical_minerals": (
        "critical mineral*",
        "rare earth*",
        "rare-earth*",
        "lithium",
        "cobalt",
        "nickel",
        "graphite",
        "gallium",
        "germanium",
        "minerals",
        "mineral security",
        "MSP",
        "mining",
        "magnet*",
        "mineral processing",
        "recycling",
    ),
    "energy_nuclear": (
        "oil",
        "crude",
        "refiner*",
        "LNG",
        "LPG",
        "gas",
        "energy",
        "nuclear",
        "reactor*",
        "uranium",
        "fuel",
        "solar",
        "renewable*",
        "Westinghouse",
        "Holtec",
        "Rosneft",
        "Lukoil",
        "barrel*",
        "petroleum",
        "pipeline",
        "power plant*",
        "hydrogen",
        "coal",
        "ethanol",
    ),
    "defence": (
        "defence",
        "defense",
        "military",
        "arms",
        "weapon*",
        "Stryker",
        "Javelin",
        "jet engine*",
        "F414",
        "drone*",
        "MQ-9B",
        "Predator",
        "P-8I",
        "exercise",
        "exercises",
        "navy",
        "naval",
        "army",
        "air force",
        "Pentagon",
        "Hegseth",
        "Rajnath",
        "co-production",
        "co-produce",
        "warship*",
        "submarine*",
        "missile*",
        "LEMOA",
        "COMCASA",
        "BECA",
        "INDUS-X",
        "armoured",
        "armored",
        "troops",
        "fighter*",
        "helicopter*",
        "Yudh Abhyas",
        "Malabar",
        "maritime security",
    ),
    "technology": (
        "technology",
        "technologies",
        "tech",
        "AI",
        "artificial intelligence",
        "quantum",
        "semiconductor*",
        "chip",
        "chips",
        "chipmaker*",
        "space",
        "satellite*",
        "ISRO",
        "Isro",
        "NASA",
        "Nasa",
        "astronaut*",
        "telecom",
        "5G",
        "6G",
        "iCET",
        "TRUST",
        "cyber*",
        "software",
        "data centre*",
        "data center*",
        "digital",
        "innovation",
    ),
    "indo_pacific_quad": (
        "Quad",
        "Indo-Pacific",
        "Indo Pacific",
        "South China Sea",
        "Indian Ocean",
        "Malabar",
        "ASEAN",
        "Taiwan",
        "free and open",
        "regional security",
        "Chinese assertiveness",
        "AUKUS",
        "Australia",
        "Japan",
        "Philippines",
    ),
    "diplomacy_other": (
        "visa",
        "visas",
        "H-1B",
        "H1B",
        "H1-B",
        "green card*",
        "deport*",
        "immigra*",
        "ambassador",
        "envoy",
        "embassy",
        "consulate",
        "summit",
        "visit",
        "visits",
        "phone call",
        "mediat*",
        "ceasefire",
        "extradit*",
        "indict*",
        "Pannun",
        "Khalistan*",
        "students",
        "diaspora",
        "foreign minister",
        "external affairs",
        "secretary of state",
        "Rubio",
        "Jaishankar",
        "diplomat*",
        "court",
        "lawsuit",
    ),
}

STRAIN_TERMS = (
    "tension*",
    "strain*",
    "rift",
    "row",
    "spat",
    "clash*",
    "critici*",
    "condemn*",
    "slam*",
    "threat*",
    "warn*",
    "sanction*",
    "penalt*",
    "punish*",
    "retaliat*",
    "halt*",
    "suspend*",
    "cancel*",
    "stall*",
    "setback",
    "snub*",
    "skip*",
    "deport*",
    "handcuff*",
    "shock*",
    "rattl*",
    "hurt*",
    "suffer*",
    "blow",
    "crisis",
    "dispute*",
    "friction",
    "protest*",
    "concern*",
    "pressure*",
    "collapse*",
    "breakdown",
    "fail*",
    "jeopard*",
    "uncertain*",
    "turmoil",
    "hike*",
    "steep",
    "worst",
    "anger*",
    "angry",
    "frustrat*",
    "accus*",
    "reject*",
    "tariff threat",
    "trade war",
    "blacklist*",
    "curb*",
    "restrict*",
    "ban",
    "bans",
    "banned",
    "lower*",
    "cut off",
    "downgrad*",
    "sour*",
    "chill*",
    "irritant*",
    "pushback",
    "losses",
    "lose",
    "worries",
    "worry",
    "fear*",
    "hit",
)
COOPERATION_TERMS = (
    "deal",
    "agreement",
    "pact",
    "partnership*",
    "cooperat*",
    "collaborat*",
    "boost*",
    "strengthen*",
    "deepen*",
    "sign",
    "signs",
    "signed",
    "launch*",
    "joint",
    "jointly",
    "welcom*",
    "prais*",
    "ally",
    "allies",
    "friend*",
    "milestone",
    "breakthrough",
    "co-produc*",
    "progress",
    "constructive",
    "mutually beneficial",
    "agree",
    "agreed",
    "agrees",
    "expand*",
    "reset",
    "thaw",
    "historic",
    "framework",
    "initiative",
    "advance*",
    "opportunit*",
    "convergence",
    "trust",
    "support*",
    "ease*",
    "eased",
    "easing",
    "resum*",
    "benefit*",
    "win-win",
    "warm*",
    "productive",
    "cut tariffs",
    "tariff cut*",
    "reduce tariffs",
)

_INDIA = _compile(INDIA_TERMS + INDIA_NAMES)
_US = _compile(US_TERMS + US_NAMES)
_OTHER = _compile(OTHER_PARTY_TERMS)
_JOINT = _compile(JOINT_TERMS)
_TOPIC = {topic: _compile(terms) for topic, terms in TOPIC_TERMS.items()}
_STRAIN = _compile(STRAIN_TERMS)
_COOPERATION = _compile(COOPERATION_TERMS)


def mentions_india(text: str) -> bool:
    return _INDIA.search(text) is not None


def mentions_us(text: str) -> bool:
    return _US.search(text) is not None


def topic_hits(text: str) -> dict[str, int]:
    """Number of keyword hits per topic."""
    return {topic: len(_TOPIC[topic].findall(text)) for topic in TOPICS}


def tone_counts(text: str) -> tuple[int, int]:
    """(strain words, cooperation words) in ``text``."""
    return len(_STRAIN.findall(text)), len(_COOPERATION.findall(text))


# --- lexical features for the heads -----------------------------------------------------------------


def relevance_features(text: str) -> list[float]:
    """India term, US term, both (or a grouping both belong to, such as the Quad), and other countries
    named (0/1 each)."""
    india = mentions_india(text)
    us = mentions_us(text)
    joint = (india and us) or _JOINT.search(text) is not None
    other = _OTHER.search(text) is not None
    return [float(india), float(us), float(joint), float(other)]


def topic_features(text: str) -> list[float]:
    """One 0/1 keyword hit per topic, in the fixed label order."""
    return [float(n > 0) for n in topic_hits(text).values()]


def stance_features(text: str) -> list[float]:
    """Strain words present, cooperation words present, and their balance in [-1, 1]."""
    strain, coop = tone_counts(text)
    balance = (coop - strain) / (coop + strain) if coop + strain else 0.0
    return [float(strain > 0), float(coop > 0), balance]


@dataclass(frozen=True, slots=True)
class FeatureGroup:
    name: str
    size: int
    compute: Callable[[str], list[float]]


FEATURE_GROUPS: dict[str, FeatureGroup] = {
    g.name: g
    for g in (
        FeatureGroup("relevance_terms", 4, relevance_features),
        FeatureGroup("topic_terms", len(TOPICS), topic_features),
        FeatureGroup("stance_terms", 3, stance_features),
    )
}
"""Lexical feature groups a head may use beside the embedding (named in the head artefact)."""


# --- the rule baselines -------------------------------------------------------------------------------


class RuleClassifier(Classifier):
    """The keyword baselines: relevance = India term AND US term; a topic = any of its keywords (else
    diplomacy_other); stance = the balance of strain and cooperation words, with the sentence that has
    the most words of the winning side as evidence. No model, no training; deterministic."""

    def __init__(self, *, neutral_margin: float = 0.0) -> None:
        self._neutral_margin = neutral_margin

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(name="rules", version=__version__)

    def score(self, items: Sequence[TextItem]) -> list[Scores]:
        return [self._score_one(item) for item in items]

    def _score_one(self, item: TextItem) -> Scores:
        sentences = item_sentences(item.title, item.summary)
        text = clean(" ".join(sentences))
        relevant = mentions_india(text) and mentions_us(text)
        hits = topic_hits(text)
        if not any(hits[t] for t in TOPICS if t != "diplomacy_other"):
            hits["diplomacy_other"] = max(hits["diplomacy_other"], 1)
        gate = 1.0 if relevant else 0.0
        topics = {t: gate * float(hits[t] > 0) for t in TOPICS}
        strain, coop = tone_counts(text)
        balance = (coop - strain) / (coop + strain) if coop + strain else 0.0
        label: StanceLabel
        if not relevant or abs(balance) <= self._neutral_margin or coop == strain:
            label = "neutral"
        else:
            label = "cooperation" if balance > 0 else "strain"
        score = balance if relevant else 0.0
        probabilities: dict[StanceLabel, float] = {
            "strain": max(0.0, -score),
            "cooperation": max(0.0, score),
            "neutral": 1.0 - abs(score),
        }
        evidence: list[str] = []
        if label != "neutral":
            side = 0 if label == "strain" else 1
            best = max(sentences, key=lambda s: tone_counts(s)[side])
            evidence = [best]
        return Scores(
            relevance=gate,
            topics=topics,
            stance_score=score,
            stance_label=label,
            stance_probabilities=probabilities,
            evidence=evidence,
        )
