"""Hand-written topic word lists, written from the annotation guideline (wikinews/GUIDELINE.md).

Not learned and not taken from any corpus: a person wrote them from the guideline's label
definitions, so they are a prior, and they can be wrong. With 90 trade articles and two impeachment
stories in training, many words the guideline names never get a reliable weight of their own. Each
list becomes one feature (sqrt of the share of a text's counted words on the list, see
`classifiers.features`), so a rare guideline word such as "impeachment" or "embargo" borrows the
weight the model learns for its whole topic. The block is used only because it wins in
cross-validation (trade CV F1 0.67 -> 0.78; see the model card). Lists are disjoint: a word counts
towards one topic at most. Keys follow LABELS order: column j of the lexicon block is label j.
Words on sklearn's English stop list (e.g. "bill") are not counted when a candidate drops stop words.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LEXICON: dict[str, frozenset[str]] = {
    "defence": _words(
        "army armed armies military troops troop soldier soldiers war wars warfare insurgency "
        "insurgents insurgent militants militant rebels rebel airstrike airstrikes missile missiles "
        "nuclear weapons weapon arms navy naval defence defense nato peacekeeping peacekeepers coup "
        "ceasefire bombing combat offensive battalion deployment deployed veterans warship "
        "warships denuclearisation denuclearization"
    ),
    "trade": _words(
        "trade trading tariff tariffs duties duty quota quotas import imports imported export "
        "exports exported exporter exporters wto dumping sanctions sanction embargo embargoes "
        "customs protectionism protectionist fta surplus deficit"
    ),
    "domestic_politics": _words(
        "election elections elected electoral campaign campaigning poll polls vote votes voters "
        "voting ballot parliament parliamentary legislature lawmakers senate senator congress party "
        "parties opposition coalition cabinet minister ministers reshuffle resign resigned "
        "resignation impeachment impeach impeached referendum constitutional candidate candidates "
        "prime premier president presidential mp mps legislation bill scandal corruption protest "
        "protesters government"
    ),
}
