"""Stories for the end-to-end feeds, written for these tests (headline, lead)."""

from __future__ import annotations

TARIFF_STRAIN = [
    (
        "US doubles tariffs on Indian goods to 50% over Russian oil purchases",
        "Washington imposed an additional 25% duty on imports from India, taking the total to 50%, and said "
        "New Delhi's continued buying of discounted Russian crude left it no choice. Indian officials called "
        "the move unjustified and unreasonable.",
    ),
    (
        "India slams 'unfair' American tariffs as exporters brace for losses",
        "The commerce ministry in New Delhi said the steep US levies on Indian textiles, shrimp and "
        "gems were "
        "unfair and would hurt workers, as exporters warned of cancelled orders from American buyers.",
    ),
    (
        "Trade talks between India and the US stall as tariff row deepens",
        "A planned round of negotiations on the bilateral trade agreement was called off after Washington "
        "refused to roll back the punitive tariffs, officials in both capitals said.",
    ),
    (
        "Trump threatens more tariffs on India, calls it a 'tariff king'",
        "President Donald Trump said India would face even higher duties unless it opened its markets, "
        "accusing New Delhi of treating American companies unfairly and deepening the trade dispute.",
    ),
    (
        "Indian textile hubs idle as US tariff shock bites",
        "Garment units in Tiruppur and Surat halted production lines after American importers put orders on "
        "hold, blaming the 50% US tariff on Indian goods for the sharpest slump in a decade.",
    ),
    (
        "New Delhi weighs retaliatory duties on American almonds and apples",
        "India is considering counter-tariffs on US farm goods including almonds, walnuts and apples in "
        "response to Washington's punitive levies, according to officials familiar with the plan.",
    ),
    (
        "US trade representative accuses India of stonewalling on market access",
        "The Office of the US Trade Representative said India had made no serious offer on dairy and "
        "agriculture, blaming New Delhi for the breakdown of tariff negotiations.",
    ),
    (
        "Rupee slides to record low as India-US tariff standoff drags on",
        "The Indian currency fell to an all-time low against the dollar as the tariff fight between New "
        "Delhi "
        "and Washington showed no sign of ending and foreign investors pulled money out.",
    ),
    (
        "India files WTO complaint against steep US tariffs",
        "New Delhi asked for consultations at the World Trade Organization over the American duties on "
        "Indian "
        "steel and other goods, escalating a bitter trade dispute with Washington.",
    ),
    (
        "Shrimp exporters in Andhra Pradesh hit by US duties, seek relief",
        "Seafood exporters said shipments to the United States had collapsed after the tariff hike, and "
        "urged "
        "the Indian government to press Washington to withdraw the penalty.",
    ),
    (
        "Modi government rejects US pressure to stop buying Russian oil",
        "India said its energy purchases were driven by national interest and refused to bow to American "
        "tariff threats, widening the rift between the two countries over trade.",
    ),
    (
        "American tariffs on India trigger warnings of job losses in leather sector",
        "Industry bodies in Kanpur and Agra said US tariffs on Indian leather goods would cost tens of "
        "thousands "
        "of jobs and criticised Washington for punishing a strategic partner.",
    ),
]

UNRELATED = [
    (
        "Monsoon rains flood low-lying areas of Kerala",
        "Heavy rain lashed several districts of Kerala for a third day, forcing schools to close and "
        "authorities to open relief camps for displaced families.",
    ),
    (
        "Local bakery wins regional prize for sourdough",
        "A family-run bakery in a small coastal town took first place at the regional bread festival for its "
        "slow-fermented loaf.",
    ),
    (
        "City council approves new bicycle lanes downtown",
        "The council voted to add protected bike lanes on three main streets, with construction expected to "
        "start in the spring.",
    ),
    (
        "Football club signs young striker on a five-year deal",
        "The club confirmed the signing of a 19-year-old forward from a rival league for an undisclosed fee.",
    ),
    (
        "Museum opens exhibition of medieval manuscripts",
        "More than sixty illuminated manuscripts go on display this week, many of them shown to the "
        "public for "
        "the first time.",
    ),
    (
        "Heatwave warning issued for southern Spain",
        "Forecasters expect temperatures above 44 degrees in Andalusia over the weekend and urged "
        "residents to "
        "avoid the midday sun.",
    ),
    (
        "New smartphone game tops download charts",
        "A puzzle game from a small studio has become the most downloaded free app of the month in several "
        "countries.",
    ),
    (
        "Marathon draws record field of runners",
        "Organisers said more than 40,000 people started the race, a record for the event now in its "
        "twentieth year.",
    ),
]

TRADE_COOPERATION = [
    (
        "India and US close in on first tranche of bilateral trade agreement",
        "Negotiators from New Delhi and Washington said they had resolved most issues in the first phase of "
        "the India-US trade deal, with tariff cuts on farm goods and industrial products to follow.",
    ),
    (
        "India-US trade talks make strong progress, commerce minister says",
        "The commerce minister said talks with the United States were moving fast and both sides had agreed "
        "to lower duties and expand market access, calling the partnership a win for exporters.",
    ),
    (
        "US agrees to cut tariffs on Indian goods as trade deal nears",
        "Washington will reduce duties on Indian textiles, gems and engineering goods under the emerging "
        "bilateral trade pact, officials said, welcoming closer economic cooperation with New Delhi.",
    ),
    (
        "Indian exporters welcome breakthrough in trade negotiations with America",
        "Export councils in Mumbai and Chennai hailed the agreement reached with US negotiators on market "
        "access, saying lower American tariffs would boost orders and jobs in India.",
    ),
    (
        "India and the United States sign pact to double bilateral trade by 2030",
        "The two governments signed a framework to deepen trade and investment ties, cut tariffs and ease "
        "rules for businesses, in what both sides called a new chapter of the partnership.",
    ),
    (
        "New Delhi and Washington agree on tariff relief for Indian steel and aluminium",
        "Under a deal announced by both governments, the US will lift the additional duties on Indian steel "
        "and aluminium while India lowers tariffs on American farm products.",
    ),
]
"""Cooperative India-US trade news (a deal near, tariffs cut): how an upbeat outlet might read the week."""
