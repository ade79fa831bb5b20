"""Synthetic news articles written for the tests (our own text, no third-party content).

Each article mixes sentences of the topics it is about, plus a unique serial so every article has
its own content hash.
"""

from __future__ import annotations

import random

SENTENCES = {
    "defence": [
        "The defence ministry confirmed that two infantry battalions will deploy to the northern border.",
        "Naval commanders said the joint exercise would test missile defence systems and submarine tracking.",
        "Parliament approved a rise in military spending to buy fighter jets, tanks and artillery shells.",
        "The alliance agreed to station more troops at its eastern bases after the missile launches.",
        "Arms manufacturers expect new orders for howitzers and air defence batteries from allied armies.",
        "Army officers said the insurgents had been pushed out of the valley after days of fighting.",
    ],
    "trade": [
        "The government imposed a 25 percent tariff on imported steel and aluminium from its neighbours.",
        "Exporters warned that the new import duties would shrink the trade surplus with the bloc.",
        "Negotiators resumed talks on a free trade agreement that would cut customs duties on farm goods.",
        "The trade ministry filed an anti-dumping complaint at the World Trade Organization.",
        "Retaliatory tariffs on soybeans and cars deepened the trade dispute between the two economies.",
        "Officials promised wider market access for foreign carmakers in exchange for lower export quotas.",
    ],
    "domestic_politics": [
        "The opposition party tabled a motion of no confidence against the prime minister's cabinet.",
        "Voters head to the polls on Sunday in a parliamentary election seen as a test for the ruling coalition.",
        "The constitutional court will rule next week on the impeachment of the president.",
        "Several ministers resigned after a corruption scandal engulfed the governing party.",
        "Lawmakers debated the electoral reform bill late into the night before a narrow vote.",
        "The party leader announced her candidacy for the presidential election at a rally in the capital.",
    ],
    "none": [
        "Astronomers reported a faint new comet that will be visible from the southern hemisphere.",
        "The city museum opened an exhibition of medieval manuscripts and painted maps.",
        "Heavy rain is expected across the coast this weekend, forecasters said.",
        "The football club signed a young midfielder on a four-year contract.",
        "Researchers found that the coral reef had partly recovered after the warm summer.",
    ],
}
TOPICS = ("defence", "trade", "domestic_politics")


def make_article(serial: int, topics: tuple[str, ...], rng: random.Random) -> dict:
    """One article about ``topics`` (none when empty), four to six paragraphs."""
    pools = [SENTENCES[t] for t in topics] or [SENTENCES["none"]]
    paragraphs = []
    for i in range(rng.randint(4, 6)):
        pool = pools[i % len(pools)]
        paragraphs.append(" ".join(rng.sample(pool, 2)))
    paragraphs.append(f"This is report number {serial} in the series.")
    title = rng.choice(pools[0]).split(",")[0][:80]
    return {
        "id": f"test-{serial}",
        "title": f"{title} ({serial})",
        "body": "\n\n".join(paragraphs),
        "source": "testwire",
        "published_at": f"2026-{1 + serial % 12:02d}-{1 + serial % 28:02d}T08:00:00Z",
    }


MIXES: list[tuple[str, ...]] = [
    ("defence",), ("trade",), ("domestic_politics",), (), ("defence", "trade"),
    ("trade", "domestic_politics"),
]  # fmt: skip


def make_articles(n: int, seed: int = 7) -> list[dict]:
    """``n`` articles cycling through single topics, pairs and no topic."""
    rng = random.Random(seed)
    return [make_article(i, MIXES[i % len(MIXES)], rng) for i in range(n)]


def make_labelled(n: int, seed: int = 7) -> list[dict]:
    """``n`` articles as training records (``title``, ``text``, ``labels``: their topics)."""
    return [
        {"title": a["title"], "text": a["body"], "labels": list(MIXES[i % len(MIXES)])}
        for i, a in enumerate(make_articles(n, seed=seed))
    ]


def stored_trade_fields(serial: int, **fields: object) -> dict[str, object]:
    """The Article columns of one classified trade article, for tests that write through the
    store's own functions (``NewArticle(fields=...)``); ``fields`` override the defaults."""
    return {
        "content_hash": f"{serial:064x}",
        "title": f"Stored article {serial}",
        "text": f"Customs duties, case {serial}.",
        "source": "test",
        "external_id": f"stored-{serial}",
        "credits": [],
        "labels": ["trade"],
        "scores": {"trade": 0.9},
        "primary_label": "trade",
        "model_version": "v1",
        "paragraphs": [{"index": 0, "labels": ["trade"], "scores": {"trade": 0.9}}],
        "explanation": {"trade": ["customs"]},
        **fields,
    }
