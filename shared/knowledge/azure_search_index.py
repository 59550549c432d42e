"""The Azure AI Search index of knowledge chunks: its definition, and chunks as its documents (pure).

One document per chunk, keyed by the chunk id (24 hex characters: valid as an Azure AI Search key,
which allows letters, digits, ``_``, ``-`` and ``=``). Besides the chunk's own fields a document
carries its source's ``title`` and ``enabled`` flag, so one query filters out disabled sources and
returns the title to cite. ``question`` and ``headings`` weigh double in the default scoring profile,
as they do in the local BM25 index: they say what a chunk is about.
https://learn.microsoft.com/azure/search/search-what-is-an-index
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.knowledge.chunking import Chunk

if TYPE_CHECKING:
    from azure.search.documents.indexes.models import SearchIndex

# https://learn.microsoft.com/rest/api/searchservice/naming-rules (document keys)
KEY = re.compile(r"[A-Za-z0-9_\-=]{1,1024}")
VECTOR_FIELD = "vector"
VECTOR_PROFILE = "knowledge-vector-profile"
VECTOR_ALGORITHM = "knowledge-hnsw"
SCORING_PROFILE = "knowledge-weights"
TEXT_WEIGHTS = {"question": 2.0, "headings": 2.0, "title": 1.5}
# What a search returns: everything but the vector (large, and not needed to cite or answer).
SELECT = ["id", "sourceId", "title", "text", "question", "headings", "anchor", "url", "position"]
# Characters that are operators in the simple query syntax: a visitor's "-" or "*" must not become
# NOT or a wildcard. https://learn.microsoft.com/azure/search/query-simple-syntax
_OPERATORS = re.compile(r"[+\-&|!(){}\[\]^\"~*?:\\/]")


def index_definition(name: str, *, vector_dimensions: int = 0, semantic_configuration: str = "") -> SearchIndex:
    """The index: text fields, filters, an HNSW vector field when ``vector_dimensions`` > 0, and a
    semantic configuration named ``semantic_configuration`` when one is given."""
    from azure.search.documents.indexes.models import (
        HnswAlgorithmConfiguration,
        ScoringProfile,
        SearchableField,
        SearchField,
        SearchFieldDataType,
        SearchIndex,
        SemanticConfiguration,
        SemanticField,
        SemanticPrioritizedFields,
        SemanticSearch,
        SimpleField,
        TextWeights,
        VectorSearch,
        VectorSearchProfile,
    )

    string = SearchFieldDataType.STRING
    fields = [
        # Filterable and sortable so a source's documents can be listed page by page (id gt last).
        SimpleField(name="id", type=string, key=True, filterable=True, sortable=True),
        SimpleField(name="sourceId", type=string, filterable=True),
        SimpleField(name="enabled", type=SearchFieldDataType.BOOLEAN, filterable=True),
        SearchableField(name="title"),
        SearchableField(name="text"),
        SearchableField(name="question"),
        SearchableField(name="headings", collection=True),
        SimpleField(name="anchor", type=string),
        SimpleField(name="url", type=string),
        SimpleField(name="position", type=SearchFieldDataType.INT32, sortable=True),
    ]
    vector_search = None
    if vector_dimensions:
        fields.append(
            SearchField(
                name=VECTOR_FIELD,
                type="Collection(Edm.Single)",  # a list of float32
                searchable=True,
                hidden=True,
                vector_search_dimensions=vector_dimensions,
                vector_search_profile_name=VECTOR_PROFILE,
            )
        )
        vector_search = VectorSearch(
            algorithms=[HnswAlgorithmConfiguration(name=VECTOR_ALGORITHM)],
            profiles=[VectorSearchProfile(name=VECTOR_PROFILE, algorithm_configuration_name=VECTOR_ALGORITHM)],
        )
    semantic = None
    if semantic_configuration:
        semantic = SemanticSearch(
            default_configuration_name=semantic_configuration,
            configurations=[
                SemanticConfiguration(
                    name=semantic_configuration,
                    prioritized_fields=SemanticPrioritizedFields(
                        title_field=SemanticField(field_name="title"),
                        content_fields=[SemanticField(field_name="text")],
                        keywords_fields=[SemanticField(field_name="question"), SemanticField(field_name="headings")],
                    ),
                )
            ],
        )
    return SearchIndex(
        name=name,
        fields=fields,
        scoring_profiles=[ScoringProfile(name=SCORING_PROFILE, text_weights=TextWeights(weights=TEXT_WEIGHTS))],
        default_scoring_profile=SCORING_PROFILE,
        vector_search=vector_search,
        semantic_search=semantic,
    )


def to_document(chunk: Chunk, *, title: str, enabled: bool, vector: Sequence[float] | None = None) -> dict[str, Any]:
    """The index document of ``chunk``; without ``vector`` a merge keeps the one already indexed."""
    document: dict[str, Any] = {
        "id": chunk.id,
        "sourceId": chunk.source_id,
        "enabled": enabled,
        "title": title,
        "text": chunk.text,
        "question": chunk.question,
        "headings": list(chunk.heading_path),
        "anchor": chunk.anchor,
        "url": chunk.url,
        "position": chunk.position,
    }
    if vector is not None:
        document[VECTOR_FIELD] = [float(value) for value in vector]
    return document


def from_document(document: Mapping[str, Any]) -> Chunk:
    """The chunk an index document was made from (fields the service left out read as empty)."""
    return Chunk(
        id=str(document["id"]),
        source_id=str(document.get("sourceId") or ""),
        text=str(document.get("text") or ""),
        heading_path=tuple(str(h) for h in document.get("headings") or ()),
        anchor=str(document.get("anchor") or ""),
        question=str(document.get("question") or ""),
        position=int(document.get("position") or 0),
        url=str(document.get("url") or ""),
    )


def search_text(query: str) -> str:
    """``query`` with the simple query syntax's operators blanked out; "" when no word is left."""
    return " ".join(_OPERATORS.sub(" ", query).split())


def odata_string(value: str) -> str:
    """``value`` as an OData string literal (quotes doubled), for filters.
    https://learn.microsoft.com/azure/search/query-odata-filter-orderby-syntax"""
    return "'" + value.replace("'", "''") + "'"
