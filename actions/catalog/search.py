"""What the catalog's search finds: the words employees type, as they type them.

An action matches when every word of the query matches it. A word matches an action when it is in
the action's name, short or long description or search keywords (so also the start of a word:
"spool" finds "spooler"), or, for words of TYPO_MIN_LENGTH letters or more, when it is close to one
of their words ("printr", "outlok", "interent"): PostgreSQL compares trigrams (pg_trgm, created by
migration 0024_search); other databases (SQLite: the demo, development) compare in Python, with an
edit distance, over the visible actions, which are few there.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection
from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.functions import Concat
from django.db.models.lookups import GreaterThanOrEqual

from actions.models import RemoteAction

SEARCH_MAX_LENGTH = 100
SEARCH_MAX_WORDS = 8
TYPO_MIN_LENGTH = 4  # shorter words match only as they are typed: "vpn" close to "vpm" is noise
# pg_trgm word_similarity at least: "printr"/"printer" 0.71, "interent"/"internet" 0.55; from LONG_WORD
# letters (as Python allows 2 typos there), "intenret"/"internet" 0.44. Lower, "disk" finds "display".
TRIGRAM_THRESHOLD = 0.5
LONG_WORD, LONG_WORD_THRESHOLD = 8, 0.4
# The texts a search looks in, in this order.
SEARCHED_FIELDS = ("name", "summary", "description", "keywords")

_WORD = re.compile(r"\w+")


def query_words(query: str) -> list[str]:
    """The words of a query that the search uses: the first SEARCH_MAX_WORDS of its first
    SEARCH_MAX_LENGTH characters (the catalog's page says so when it shortens a query)."""
    return query[:SEARCH_MAX_LENGTH].split()[:SEARCH_MAX_WORDS]


def in_database() -> bool:
    """Whether the database itself can tell typos (PostgreSQL's pg_trgm); else Python does."""
    return connection.vendor == "postgresql"


def database_rule(words: Iterable[str]) -> Q:
    """PostgreSQL: every word in the action's texts, or (long enough) close to one of their words."""
    rule = Q()
    for word in words:
        found = Q()
        for name in SEARCHED_FIELDS:
            found |= Q(**{f"{name}__icontains": word})
        if len(word) >= TYPO_MIN_LENGTH:
            found |= Q(_close_to(word))
        rule &= found
    return rule


def _close_to(word: str):
    """word_similarity(word, the action's texts) at least the threshold, as a boolean expression."""
    texts = Concat(*_spaced(SEARCHED_FIELDS), output_field=TextField())
    threshold = LONG_WORD_THRESHOLD if len(word) >= LONG_WORD else TRIGRAM_THRESHOLD
    return GreaterThanOrEqual(TrigramWordSimilarity(word, texts), threshold)


def _spaced(names: tuple[str, ...]) -> list:
    spaced: list = []
    for name in names:
        if spaced:
            spaced.append(Value(" "))
        spaced.append(name)
    return spaced


def search_actions(actions: QuerySet[RemoteAction], query: str) -> QuerySet[RemoteAction]:
    """The actions of `actions` that match every word of the query (the API's search).

    On PostgreSQL, a filter; elsewhere one more query reads the actions' texts and Python matches them.
    """
    words = query_words(query)
    if not words:
        return actions
    if in_database():
        return actions.filter(database_rule(words))
    found = [pk for pk, *texts in actions.values_list("pk", *SEARCHED_FIELDS) if matches(words, texts)]
    return actions.filter(pk__in=found)


def matches(words: list[str], texts: Iterable[str]) -> bool:
    """Python's rule (SQLite): every word is in the texts, or close to one of their words."""
    text = " ".join(texts).casefold()
    text_words = set(_WORD.findall(text))
    return all(_word_matches(word.casefold(), text, text_words) for word in words)


def _word_matches(word: str, text: str, text_words: set[str]) -> bool:
    if word in text:
        return True
    if len(word) < TYPO_MIN_LENGTH:
        return False
    return any(_near(word, candidate) for candidate in text_words)


@functools.lru_cache(maxsize=65536)
def _near(word: str, candidate: str) -> bool:
    """`word` is a small typo away from `candidate` or from its start ("spoll" for "spooler").
    Remembered: the same few words recur across a catalog's actions and its searches."""
    limit = 2 if len(word) >= LONG_WORD else 1
    if abs(len(candidate) - len(word)) <= limit and typo_distance(word, candidate) <= limit:
        return True
    return len(candidate) > len(word) and typo_distance(word, candidate[: len(word)]) <= limit


def typo_distance(a: str, b: str) -> int:
    """Letters to insert, delete, change or swap with their neighbour to turn `a` into `b`
    (optimal string alignment distance: a swap, the commonest typo, counts as one)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]
