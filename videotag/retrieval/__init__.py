"""Video embeddings and exact similar-video search (similar-video recall)."""

from videotag.retrieval.embeddings import (
    EMBEDDING_FORMATS,
    embedding_batches,
    l2_normalize,
    load_embeddings,
    write_embeddings,
)
from videotag.retrieval.similar import (
    SIMILAR_FORMATS,
    similar_videos,
    top_k_similar,
    write_similar,
)

__all__ = [
    "EMBEDDING_FORMATS",
    "SIMILAR_FORMATS",
    "embedding_batches",
    "l2_normalize",
    "load_embeddings",
    "similar_videos",
    "top_k_similar",
    "write_embeddings",
    "write_similar",
]
