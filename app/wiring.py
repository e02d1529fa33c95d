"""The composition root: the one place that loads the models, opens the knowledge base (with the embedder check and
the index settings), and builds the retriever, reranker, LLM and answer pipeline. Every face — the CLIs, the chat
page, the LangChain tool, the agent example, uploads, the HTTP server and the benchmarks — gets its parts here."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import ConfigError, Settings
from app.generation.base import Generator
from app.generation.factory import load_generator
from app.generation.short_reply import ShortReplyWriter
from retrieval.hybrid_retriever import HybridRetriever
from retrieval.reranker import MAXSIM, Reranker, build_reranker

if TYPE_CHECKING:
    from app.answer.answer_pipeline import AnswerPipeline, Retriever
    from ingest.embedding.embedder import Embedder
    from ingest.pipeline.ingest_pipeline import IngestOptions
    from ingest.pipeline.ingest_report import IngestReport
    from ingest.store.store_protocol import KnowledgeStore, StoreSnapshot
    from ingest.store.token_store import TokenVectorStore
    from prompts.checks.base import AnswerCheck, PassageGate
    from prompts.grounding_check import SupportScorer


# The libraries docqa runs models with, and what they say while loading or saving one ("Loaded 2 prompts", "Saving
# model to ...") that a docqa command says in its own words or not at all; their warnings and errors still show.
_CHATTY_LOGGERS = ("sentence_transformers",)


def quiet_model_libraries() -> None:
    """Called first by each face (a process docqa owns): the terminal shows docqa's own lines and bars only.
    huggingface_hub and transformers draw a bar per model load and save ("Loading weights", "Writing model
    shards") unless HF_HUB_DISABLE_PROGRESS_BARS is set when they are first imported; a value the user set wins."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def load_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded once per process (converted/traced on first use)."""
    from ingest.embedding.factory import load_embedder as load

    return load(settings.embedder, settings.models_path)


def knowledge_store(settings: Settings) -> KnowledgeStore:
    """The configured base's store (``[store] backend``): the FAISS folder at ``settings.kb_path``, or the base's
    Milvus collections (``store.collection``, default derived from the base's folder). Opens nothing yet."""
    if settings.store.backend == "milvus":
        from ingest.store.milvus.milvus_store import MilvusStore

        # Named after the base's folder, which a rename does not change; the default base has none.
        base_key = Path(settings.base_dir).name if settings.base_dir else settings.kb_name
        return MilvusStore.for_base(settings.store, settings.kb_path, base_key, settings.index)
    from ingest.store.folder_store import FolderStore

    return FolderStore(settings.kb_path, settings.index)


def open_knowledge_base(settings: Settings, embedder: Embedder) -> StoreSnapshot:
    """The live generation of the configured base, refused when another embedder built it; the folder store's
    index search parameters (nprobe, efSearch) and device come from ``settings.index``."""
    return knowledge_store(settings).open(embedder=embedder.name, dimension=embedder.dimension)


def open_token_store(settings: Settings, embedder: Embedder) -> TokenVectorStore | None:
    """The token vectors the ingest stored for this base and embedder, or None when there are none. They stay in
    the base's local folder whatever the store: a machine that did not ingest the base has none, and MaxSim then
    encodes its candidates at query time (README, "Knowledge base on Milvus")."""
    from ingest.embedding.embedding_cache import passage_fingerprint
    from ingest.store.kb_layout import TOKEN_VECTORS_FILE
    from ingest.store.token_store import TokenVectorStore

    return TokenVectorStore.open_readonly(settings.kb_path / TOKEN_VECTORS_FILE,
                                          passage_fingerprint(embedder.name, embedder.dimension, settings.embedder),
                                          embedder.dimension)


def build_reranker_for(settings: Settings, embedder: Embedder) -> Reranker:
    store = open_token_store(settings, embedder) if settings.retrieval.reranker == MAXSIM else None
    return build_reranker(settings.retrieval.reranker, embedder, device=settings.embedder.device,
                          batch_size=settings.embedder.batch_size, token_store=store)


def build_retriever(settings: Settings, embedder: Embedder | None = None,
                    with_reranker: bool | None = None) -> HybridRetriever:
    """A retriever over the configured base. The reranker is built when ``with_reranker`` (default: the
    ``retrieval.rerank`` setting) so that ``retrieve(..., rerank=True)`` can use it per call."""
    embedder = embedder or load_embedder(settings)
    kb = open_knowledge_base(settings, embedder)
    build = settings.retrieval.rerank if with_reranker is None else with_reranker
    reranker = build_reranker_for(settings, embedder) if build else None
    return HybridRetriever(kb, embedder, settings.retrieval, reranker, settings.limits, base=settings.kb_name)


def build_generator(settings: Settings) -> Generator:
    """The configured LLM, loaded once per process."""
    return load_generator(settings.generation, settings.models_path)


def build_support_scorer(settings: Settings, embedder: Embedder) -> SupportScorer:
    """What scores answer sentences against their passages: the retrieval embedder (cosine), or the
    sentence_transformers.CrossEncoder that ``answer.support_scorer`` names."""
    from prompts.grounding_check import CrossEncoderSupportScorer, EmbeddingSupportScorer

    if settings.answer.support_scorer == "embedder":
        return EmbeddingSupportScorer(embedder)
    return CrossEncoderSupportScorer(settings.answer.support_scorer, device=settings.embedder.device)


def build_answer_checks(settings: Settings, generator: Generator, embedder: Embedder,
                        support_scorer: SupportScorer | None = None
                        ) -> tuple[list[PassageGate], list[AnswerCheck]]:
    """The ordered gates and checks of ``[answer] gates`` / ``[answer] checks`` (prompts/checks/). The LLM
    verifies evidence when its backend can score a yes/no (llama.cpp)."""
    from prompts.checks.registry import CheckLoadError, CheckParts, load_checks, load_gates

    yes_no = generator if hasattr(generator, "yes_probability") else None
    parts = CheckParts(settings.answer, yes_no, support_scorer or build_support_scorer(settings, embedder),
                       ShortReplyWriter(generator, settings.generation))
    try:
        return load_gates(parts), load_checks(parts)
    except CheckLoadError as exc:  # an entry the settings could only check for its form ("module:factory")
        raise ConfigError(str(exc)) from None


def assemble_pipeline(retriever: Retriever, generator: Generator, embedder: Embedder, settings: Settings,
                      support_scorer: SupportScorer | None = None) -> AnswerPipeline:
    """The answer pipeline over parts already loaded, with the gates and checks the settings name."""
    from app.answer.answer_pipeline import AnswerPipeline

    gates, checks = build_answer_checks(settings, generator, embedder, support_scorer)
    return AnswerPipeline(retriever, generator, settings, gates, checks)


def build_pipeline(settings: Settings, with_reranker: bool | None = None,
                   generator: Generator | None = None, embedder: Embedder | None = None) -> AnswerPipeline:
    """Embedder, base, retriever and LLM wired into an answer pipeline (models load once per process; a long-running
    face passes the ones it holds when it reopens a new generation of the base)."""
    if generator is not None:
        embedder = embedder or load_embedder(settings)
        return assemble_pipeline(build_retriever(settings, embedder, with_reranker), generator, embedder, settings)
    # The LLM loads (mostly mapping the GGUF, in C without the GIL) while the embedder's imports and model load
    # run here: a terminal question starts answering seconds sooner (bench/RESULTS_TTFT.md).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-llm") as pool:
        pending = pool.submit(build_generator, settings)
        embedder = embedder or load_embedder(settings)
        retriever = build_retriever(settings, embedder, with_reranker)
        return assemble_pipeline(retriever, pending.result(), embedder, settings)


def kb_notices(retriever: object) -> list[str]:
    """What opening the base repaired (one line each), for the faces to show; none for a retriever without a base.
    A retriever over several bases says its own (which base cannot be used, what was repaired in which)."""
    own = getattr(retriever, "notices", None)
    if own is not None:
        return list(own)
    return list(getattr(getattr(retriever, "kb", None), "notices", []))


def run_ingest(settings: Settings, paths: Sequence[Path], options: IngestOptions | None = None,
               embedder_factory: Callable[[], Embedder] | None = None) -> IngestReport:
    """The incremental ingest of ``paths`` into the configured base and store (the embedder loads only if work
    needs it)."""
    from ingest.pipeline.ingest_pipeline import run_ingest as run

    return run(settings, paths, options, embedder_factory=embedder_factory, store=knowledge_store(settings))
