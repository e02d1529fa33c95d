"""The SQLite catalog: documents map paths to content, chunks are stored once per content."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.records import ChunkDraft, DocumentRecord
from ingest.store.catalog import Catalog, CatalogError


def _drafts(n: int, prefix: str = "text") -> list[ChunkDraft]:
    return [ChunkDraft(text=f"{prefix} {i}", page=i if i % 2 else None, heading_path=["章", f"节{i}"],
                       char_start=i * 10, char_end=i * 10 + 9, ordinal=i) for i in range(n)]


def _doc(path: str, digest: str, n: int, title: str = "") -> DocumentRecord:
    return DocumentRecord(path=path, content_hash=digest, mtime=1.0, size=10, n_chunks=n, file_type="text",
                          title=title or path, updated_at=2.0)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog.create(tmp_path / "catalog.sqlite3")
    yield cat
    cat.close()


def test_chunks_round_trip_with_source_title_and_spans(catalog: Catalog) -> None:
    ids = catalog.add_chunks("h1", _drafts(3))
    catalog.put_document(_doc("/a.txt", "h1", 3, title="A"))
    chunks = catalog.get_chunks([ids[2], 12345, ids[0]])
    assert [c.chunk_id for c in chunks] == [ids[2], ids[0]]
    first = chunks[1]
    assert (first.doc_id, first.source, first.title, first.text) == ("h1", "/a.txt", "A", "text 0")
    assert first.heading_path == ["章", "节0"] and first.page is None
    assert (chunks[0].ordinal, chunks[0].page, chunks[0].char_start, chunks[0].char_end) == (2, None, 20, 29)


def test_duplicate_paths_share_content_and_first_path_is_the_source(catalog: Catalog) -> None:
    catalog.add_chunks("h1", _drafts(2))
    catalog.put_document(_doc("/z/first.txt", "h1", 2))
    catalog.put_document(_doc("/a/copy.txt", "h1", 2))
    assert catalog.count_chunks() == 2
    assert {c.source for c in catalog.iter_chunks()} == {"/z/first.txt"}
    catalog.remove_document("/z/first.txt")
    assert catalog.remove_orphan_contents() == []
    assert {c.source for c in catalog.iter_chunks()} == {"/a/copy.txt"}


def test_orphan_contents_are_removed_and_ids_never_reused(catalog: Catalog) -> None:
    old = catalog.add_chunks("h1", _drafts(2))
    catalog.put_document(_doc("/a.txt", "h1", 2))
    catalog.put_document(_doc("/a.txt", "h2", 1))  # the file changed
    new = catalog.add_chunks("h2", _drafts(1, "changed"))
    assert sorted(catalog.remove_orphan_contents()) == old
    assert catalog.chunk_ids() == new and new[0] > max(old)
    catalog.remove_document("/a.txt")
    assert catalog.remove_orphan_contents() == new
    assert catalog.add_chunks("h3", _drafts(1))[0] > new[0]


def test_neighbours_stay_in_the_document_and_in_order(catalog: Catalog) -> None:
    ids = catalog.add_chunks("h1", _drafts(5))
    catalog.add_chunks("h2", _drafts(5, "other"))
    catalog.put_document(_doc("/a.txt", "h1", 5))
    catalog.put_document(_doc("/b.txt", "h2", 5))
    middle = catalog.get_chunks([ids[2]])[0]
    assert [c.ordinal for c in catalog.neighbours(middle, 1)] == [1, 2, 3]
    assert {c.doc_id for c in catalog.neighbours(middle, 10)} == {"h1"}
    first = catalog.get_chunks([ids[0]])[0]
    assert [c.ordinal for c in catalog.neighbours(first, 1)] == [0, 1]


def test_copy_leaves_the_source_untouched(tmp_path: Path, catalog: Catalog) -> None:
    catalog.add_chunks("h1", _drafts(2))
    catalog.put_document(_doc("/a.txt", "h1", 2))
    catalog.commit()
    copy = Catalog.copy(catalog.path, tmp_path / "copy.sqlite3")
    copy.remove_document("/a.txt")
    copy.remove_orphan_contents()
    copy.commit()
    assert copy.count_chunks() == 0
    assert catalog.count_chunks() == 2 and catalog.document("/a.txt") is not None
    copy.close()


def test_readonly_open_rejects_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="junk.sqlite3"):
        Catalog.open_readonly(junk)
    with pytest.raises(CatalogError, match="missing"):
        Catalog.open_readonly(tmp_path / "absent.sqlite3")
