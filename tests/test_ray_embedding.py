"""ingest/embedding/ray_embedding.py on a real local Ray instance (ray.init(num_cpus=2)).

The logic tests use the FakeEmbedder inside the Ray actors (fast); the slow test runs the real embedder in
the actors and checks it gives the in-process embedder's vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.config import ConfigError, EmbedderSettings, Settings, load_settings
from ingest.embedding.ray_embedding import RayEmbedder, load_ingest_embedder

ray = pytest.importorskip("ray", reason="Ray Data is the optional 'scale' extra")

REPO = Path(__file__).resolve().parent.parent
TEXTS = [f"第{i}段：本地文档问答系统的测试文本。Passage {i} of the test corpus." for i in range(37)]


def hash_loader(settings: EmbedderSettings, models_dir: Path) -> "object":
    from ingest.testing.fake_embedder import FakeEmbedder
    return FakeEmbedder()


@pytest.fixture(scope="module")
def local_ray():
    # Workers import the project and the test fakes from source, as a driver run from the repository would.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": f"{REPO}:{REPO / 'tests'}", "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def test_ray_vectors_come_back_in_input_order(local_ray: None, tmp_path: Path) -> None:
    from ingest.testing.fake_embedder import FakeEmbedder

    settings = EmbedderSettings(runner="ray", ray_workers=2, batch_size=4)
    embedder = RayEmbedder(settings, tmp_path, loader=hash_loader)
    vectors = embedder.encode_passages(TEXTS)
    np.testing.assert_allclose(vectors, FakeEmbedder().encode_passages(TEXTS), atol=1e-6)
    assert embedder.name == FakeEmbedder().name and embedder.dimension == vectors.shape[1]


def test_ray_ingest_builds_the_same_knowledge_base(local_ray: None, tmp_path: Path) -> None:
    from ingest.testing.fake_embedder import FakeEmbedder

    from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
    from ingest.store.knowledge_base import KnowledgeBase

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"note{i}.txt").write_text("\n\n".join(TEXTS[i * 10:(i + 1) * 10]), encoding="utf-8")

    def ingest(kb: str, factory) -> KnowledgeBase:
        settings = Settings(data_dir=tmp_path / kb)
        report = run_ingest(settings, [docs], IngestOptions(), embedder_factory=factory)
        assert report.committed and not report.failures
        return KnowledgeBase.open(settings.kb_path)

    def token_vectors(kb: KnowledgeBase, texts: list[str]) -> list[np.ndarray]:
        from ingest.embedding.embedding_cache import passage_fingerprint
        from ingest.store.kb_layout import TOKEN_VECTORS_FILE
        from ingest.store.text_keyed_sqlite import text_hash
        from ingest.store.token_store import TokenVectorStore

        key = passage_fingerprint(kb.manifest.embedder, kb.manifest.dimension, Settings().embedder)
        store = TokenVectorStore.open_readonly(kb.kb_dir / TOKEN_VECTORS_FILE, key, kb.manifest.dimension)
        assert store is not None
        found = store.get_many(texts)
        return [found[text_hash(t)] for t in texts]

    ray_settings = EmbedderSettings(runner="ray", ray_workers=2, batch_size=4)
    with_ray = ingest("ray", lambda: RayEmbedder(ray_settings, tmp_path, loader=hash_loader))
    local = ingest("local", FakeEmbedder)
    ids = np.array([c.chunk_id for c in local.iter_chunks()], dtype=np.int64)
    assert with_ray.manifest.n_chunks == local.manifest.n_chunks == len(ids) > 0
    np.testing.assert_allclose(np.stack([with_ray.index.reconstruct(int(i)) for i in ids]),
                               np.stack([local.index.reconstruct(int(i)) for i in ids]), atol=1e-6)
    # The reranker's token vectors come back from the Ray actors too, one array per passage, in place.
    texts = [c.text for c in local.iter_chunks()]
    for on_ray, in_process in zip(token_vectors(with_ray, texts), token_vectors(local, texts)):
        np.testing.assert_allclose(on_ray, in_process, atol=1e-3)
    with_ray.close()
    local.close()


def test_ray_embeds_and_milvus_stores(local_ray: None, tmp_path: Path) -> None:
    """The scale-out path of `python -m ingest --store milvus://... --ray`: Ray Data embeds, Milvus (Lite) stores,
    and the base answers as the same ingest without Ray does."""
    pytest.importorskip("pymilvus")
    from ingest.testing.fake_embedder import FakeEmbedder

    from app.wiring import build_retriever, knowledge_store, run_ingest
    from ingest.pipeline.ingest_pipeline import IngestOptions

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"note{i}.txt").write_text("\n\n".join(TEXTS[i * 10:(i + 1) * 10]), encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "home")
    settings.store = settings.store.replace(backend="milvus")
    ray_settings = EmbedderSettings(runner="ray", ray_workers=2, batch_size=4)
    report = run_ingest(settings, [docs], IngestOptions(),
                        embedder_factory=lambda: RayEmbedder(ray_settings, tmp_path, loader=hash_loader))
    assert report.committed and report.documents_total == 3 and knowledge_store(settings).backend == "milvus"
    passages = build_retriever(settings, FakeEmbedder()).retrieve(TEXTS[25], top_k=1).passages
    assert passages[0].chunk.source.endswith("note2.txt")


def test_no_texts_needs_no_ray_job(tmp_path: Path) -> None:
    embedder = RayEmbedder(EmbedderSettings(runner="ray"), tmp_path, loader=hash_loader)
    assert embedder.encode_passages([]).shape == (0, embedder.dimension)


def test_unknown_runner_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"embedder\.runner: Input should be 'local' or 'ray' \(got 'spark'\)"):
        load_settings(embedder={"runner": "spark"}, data_dir=tmp_path)


@pytest.mark.slow
def test_real_embedder_on_ray_matches_in_process(local_ray: None, real_embedder, packaged_models_dir: Path,
                                                 real_embedder_settings: EmbedderSettings) -> None:
    ray_settings = real_embedder_settings.replace(runner="ray", ray_workers=1, batch_size=4)
    embedder = load_ingest_embedder(ray_settings, packaged_models_dir)
    assert isinstance(embedder, RayEmbedder)
    assert embedder.name == real_embedder.name
    texts = TEXTS[:6]
    on_ray = embedder.encode_passages(texts)
    local = real_embedder.encode_passages(texts)
    assert on_ray.shape == local.shape
    assert float(np.min(np.sum(on_ray * local, axis=1))) > 0.9999
