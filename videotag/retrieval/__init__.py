"""Video embeddings and similar-video search: exact (NumPy, `similar`) or through a
faiss index (`videotag.retrieval.index`)."""

from videotag.retrieval.embeddings import (
    EMBEDDING_FORMATS,
    embedding_batches,
    embedding_example,
    l2_normalize,
    load_embeddings,
    write_embeddings,
)
from videotag.retrieval.similar import (
    SIMILAR_FORMATS,
    query_rows,
    similar_videos,
    top_k_similar,
    write_similar,
)
from videotag.retrieval.vectors import Embeddings, load_vectors

__all__ = [
    "EMBEDDING_FORMATS",
    "Embeddings",
    "SIMILAR_FORMATS",
    "embedding_batches",
    "embedding_example",
    "l2_normalize",
    "load_embeddings",
    "load_vectors",
    "query_rows",
    "similar_videos",
    "top_k_similar",
    "write_embeddings",
    "write_similar",
]
