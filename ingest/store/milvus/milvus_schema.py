"""The collections of one knowledge base on Milvus, their fields and indexes, and the row filter of a generation.

<prefix>_commits             one row per committed generation (the pointer: the live one is the highest); its
                             embedder, counts and the epoch whose collections it reads
<prefix>_e<epoch>_chunks     chunk text + metadata + dense vector + the BM25 sparse vector Milvus computes from the
                             text with its jieba analyzer; gen_added / gen_removed say which generations see a row
<prefix>_e<epoch>_docs       one row per document version, with the same two generation fields

An incremental ingest adds rows to the live epoch; a rebuild (or the first ingest) starts a new epoch, i.e. new
collections, so a new embedder's dimension needs no schema change and the old epoch answers until the commit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ingest.settings import IndexSettings, StoreSettings

# gen_removed of a row no generation removed: larger than any generation number.
NOT_REMOVED = 2**62
FORMAT_VERSION = 1
# Milvus caps VARCHAR fields at 65,535 bytes.
MAX_VARCHAR = 65_535
HASH_CHARS = 64
# Milvus requires a vector field in every collection; the commit and document rows carry this constant one.
PLACEHOLDER_DIM = 2
PLACEHOLDER = [1.0, 0.0]
# Milvus caps the number of rows one query returns; bigger reads go through an iterator.
QUERY_WINDOW = 16_384
# Chinese and English words for BM25: jieba in search mode (a compound also yields its parts), lower-cased.
ANALYZER = {"tokenizer": {"type": "jieba", "mode": "search"}, "filter": ["lowercase"]}

CHUNK_FIELDS = ["chunk_id", "content_hash", "ordinal", "text", "page", "heading_path", "char_start", "char_end"]
DOC_FIELDS = ["doc_pk", "seq", "path", "content_hash", "mtime", "size", "n_chunks", "file_type", "title",
              "updated_at"]
COMMIT_FIELDS = ["gen", "epoch", "embedder", "dimension", "n_documents", "n_chunks", "created_at", "updated_at",
                 "next_chunk_id", "next_doc_pk", "format_version"]
_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EPOCH_NAME = r"_e(\d+)_(chunks|docs)$"


def default_prefix(base_key: str) -> str:
    """``docqa_`` + the base's folder name, made a valid collection name (letters, digits, "_"); a name that had
    to change gets a short hash of the original so two folders never share collections."""
    clean = re.sub(r"[^a-z0-9_]", "_", base_key.lower())
    if clean != base_key:
        clean += "_" + hashlib.sha1(base_key.encode("utf-8")).hexdigest()[:8]
    return f"docqa_{clean}"


def check_prefix(prefix: str) -> str:
    if not _NAME_OK.match(prefix) or len(prefix) > 200:
        raise ValueError(f"[store] collection {prefix!r}: use letters, digits and '_' (not first a digit), "
                         "at most 200 characters")
    return prefix


@dataclass(frozen=True)
class CollectionNames:
    prefix: str

    @property
    def commits(self) -> str:
        return f"{self.prefix}_commits"

    def chunks(self, epoch: int) -> str:
        return f"{self.prefix}_e{epoch}_chunks"

    def docs(self, epoch: int) -> str:
        return f"{self.prefix}_e{epoch}_docs"

    def epoch_of(self, collection: str) -> int | None:
        """The epoch of one of this base's chunk/doc collections, None for any other collection."""
        match = re.match(re.escape(self.prefix) + _EPOCH_NAME, collection)
        return int(match.group(1)) if match else None


def visible(generation: int) -> str:
    """The rows generation ``generation`` sees: added by it or before, not removed by it or before."""
    return f"gen_added <= {generation} and gen_removed > {generation}"


def generation_name(generation: int) -> str:
    return f"gen-{generation:06d}"


def _placeholder(schema, index_params) -> None:
    from pymilvus import DataType

    schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=PLACEHOLDER_DIM)
    index_params.add_index("placeholder", index_type="FLAT", metric_type="IP")


def _generation_fields(schema) -> None:
    from pymilvus import DataType

    schema.add_field("gen_added", DataType.INT64)
    schema.add_field("gen_removed", DataType.INT64)


def create_commits(client, names: CollectionNames) -> None:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("gen", DataType.INT64, is_primary=True)
    schema.add_field("epoch", DataType.INT64)
    schema.add_field("embedder", DataType.VARCHAR, max_length=MAX_VARCHAR)
    for name in ("dimension", "n_documents", "n_chunks", "next_chunk_id", "next_doc_pk", "format_version"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("created_at", DataType.DOUBLE)
    schema.add_field("updated_at", DataType.DOUBLE)
    index_params = client.prepare_index_params()
    _placeholder(schema, index_params)
    client.create_collection(names.commits, schema=schema, index_params=index_params, consistency_level="Strong")


def _dense_index(settings: StoreSettings, index: IndexSettings) -> dict:
    params = {"FLAT": {}, "AUTOINDEX": {},
              "HNSW": {"M": index.hnsw_m, "efConstruction": index.hnsw_ef_construction},
              "IVF_FLAT": {"nlist": max(1, index.ivf_nlist or 1024)}}[settings.dense_index]
    return {"index_type": settings.dense_index, "metric_type": "IP", "params": params}


def dense_search_params(settings: StoreSettings, index: IndexSettings) -> dict:
    """Search-time parameters of the dense index, from the same settings the folder store's ANN index reads."""
    params = {"HNSW": {"ef": index.hnsw_ef_search}, "IVF_FLAT": {"nprobe": index.ivf_nprobe}}
    return {"metric_type": "IP", "params": params.get(settings.dense_index, {})}


def create_epoch(client, names: CollectionNames, epoch: int, dimension: int, settings: StoreSettings,
                 index: IndexSettings) -> None:
    """The chunk and document collections of a new epoch, indexed and loaded."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("chunk_id", DataType.INT64, is_primary=True)
    schema.add_field("content_hash", DataType.VARCHAR, max_length=HASH_CHARS)
    schema.add_field("ordinal", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                     analyzer_params=ANALYZER)
    schema.add_field("page", DataType.INT64)  # -1: the file has no pages
    schema.add_field("heading_path", DataType.VARCHAR, max_length=MAX_VARCHAR)  # JSON list
    schema.add_field("char_start", DataType.INT64)
    schema.add_field("char_end", DataType.INT64)
    _generation_fields(schema)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    index_params = client.prepare_index_params()
    dense = _dense_index(settings, index)
    index_params.add_index("dense", **dense)
    index_params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                           params={"bm25_k1": index.bm25_k1, "bm25_b": index.bm25_b})
    # Neighbours and removals look chunks up by content; the generation filters are cheap scans beside a search.
    index_params.add_index("content_hash", index_type="INVERTED")
    client.create_collection(names.chunks(epoch), schema=schema, index_params=index_params,
                             consistency_level="Strong")

    docs = MilvusClient.create_schema(auto_id=False)
    docs.add_field("doc_pk", DataType.INT64, is_primary=True)
    docs.add_field("seq", DataType.INT64)  # the order documents were first recorded in (first source of content)
    docs.add_field("path", DataType.VARCHAR, max_length=MAX_VARCHAR)
    docs.add_field("content_hash", DataType.VARCHAR, max_length=HASH_CHARS)
    docs.add_field("mtime", DataType.DOUBLE)
    docs.add_field("size", DataType.INT64)
    docs.add_field("n_chunks", DataType.INT64)
    docs.add_field("file_type", DataType.VARCHAR, max_length=MAX_VARCHAR)
    docs.add_field("title", DataType.VARCHAR, max_length=MAX_VARCHAR)
    docs.add_field("updated_at", DataType.DOUBLE)
    _generation_fields(docs)
    doc_index = client.prepare_index_params()
    _placeholder(docs, doc_index)
    client.create_collection(names.docs(epoch), schema=docs, index_params=doc_index, consistency_level="Strong")
