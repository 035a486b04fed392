"""The trained FAQ index kept on disk (conversations/faq_cache.py): the next process loads it instead
of training it, never a stale one, never a file someone else could have written, and a broken
file only costs a new training."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from conversations import faq_cache


class Index:
    """Stands in for the FAQ index: what matters here is which one comes back."""

    def __init__(self, made_by: str) -> None:
        self.made_by = made_by


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    faq = tmp_path / "faq.yaml"
    faq.write_text("- id: a\n", encoding="utf-8")
    return [faq]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def builder(name: str, calls: list[str]):
    def build() -> Index:
        calls.append(name)
        return Index(name)
    return build


def test_the_second_process_loads_what_the_first_trained(inputs, directory):
    calls: list[str] = []
    first = faq_cache.load_or_build(builder("first", calls), Index, inputs, directory)
    again = faq_cache.load_or_build(builder("second", calls), Index, inputs, directory)
    assert (first.made_by, again.made_by, calls) == ("first", "first", ["first"])
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    assert [p.name for p in directory.iterdir()] == [f"faq-{faq_cache.key_of(inputs)}.pickle"]


def test_a_changed_input_is_trained_anew(inputs, directory):
    calls: list[str] = []
    faq_cache.load_or_build(builder("before", calls), Index, inputs, directory)
    inputs[0].write_text("- id: b\n", encoding="utf-8")
    after = faq_cache.load_or_build(builder("after", calls), Index, inputs, directory)
    assert (after.made_by, calls) == ("after", ["before", "after"])


def test_only_the_newest_files_are_kept(inputs, directory):
    made: list[Path] = []
    for n in range(faq_cache.KEEP + 2):
        inputs[0].write_text(f"- id: e{n}\n", encoding="utf-8")
        faq_cache.load_or_build(builder(str(n), []), Index, inputs, directory)
        made.append(directory / f"faq-{faq_cache.key_of(inputs)}.pickle")
        os.utime(made[-1], (1_000_000 + n, 1_000_000 + n))
    assert sorted(directory.glob("faq-*.pickle")) == sorted(made[-faq_cache.KEEP:])


def test_a_temporary_file_left_by_a_killed_process_is_removed_later(inputs, directory):
    faq_cache.load_or_build(builder("first", []), Index, inputs, directory)
    old, fresh = directory / ".faq-abandoned", directory / ".faq-being-written"
    for path in (old, fresh):
        path.write_bytes(b"half a pickle")
    os.utime(old, (1_000_000, 1_000_000))
    inputs[0].write_text("- id: b\n", encoding="utf-8")
    faq_cache.load_or_build(builder("second", []), Index, inputs, directory)
    assert not old.exists() and fresh.exists()


def test_a_folder_reached_through_a_symbolic_link_is_used(inputs, tmp_path):
    """systemd's CacheDirectory= with DynamicUser= gives /var/cache/NAME as a link."""
    real = tmp_path / "private" / "gocua"
    real.mkdir(parents=True, mode=0o700)
    link = tmp_path / "gocua"
    link.symlink_to(real)
    calls: list[str] = []
    faq_cache.load_or_build(builder("first", calls), Index, inputs, link)
    assert faq_cache.load_or_build(builder("second", calls), Index, inputs, link).made_by == "first"
    assert calls == ["first"] and len(list(real.glob("faq-*.pickle"))) == 1


def test_a_file_that_is_a_symbolic_link_is_not_followed(inputs, directory, tmp_path):
    faq_cache.load_or_build(builder("first", []), Index, inputs, directory)
    path = directory / f"faq-{faq_cache.key_of(inputs)}.pickle"
    elsewhere = tmp_path / "elsewhere.pickle"
    elsewhere.write_bytes(pickle.dumps(Index("planted")))
    path.unlink()
    path.symlink_to(elsewhere)
    assert faq_cache.load_or_build(builder("again", []), Index, inputs, directory).made_by == "again"


@pytest.mark.parametrize("damage", [b"", b"not a pickle", pickle.dumps({"an": "other thing"})])
def test_a_broken_file_is_trained_anew_and_replaced(inputs, directory, damage):
    faq_cache.load_or_build(builder("first", []), Index, inputs, directory)
    path = directory / f"faq-{faq_cache.key_of(inputs)}.pickle"
    path.write_bytes(damage)
    calls: list[str] = []
    found = faq_cache.load_or_build(builder("again", calls), Index, inputs, directory)
    assert (found.made_by, calls) == ("again", ["again"])
    assert faq_cache.load_or_build(builder("third", calls), Index, inputs, directory).made_by == "again"


def test_a_file_others_can_write_is_not_loaded(inputs, directory):
    faq_cache.load_or_build(builder("first", []), Index, inputs, directory)
    path = directory / f"faq-{faq_cache.key_of(inputs)}.pickle"
    path.chmod(0o666)
    calls: list[str] = []
    assert faq_cache.load_or_build(builder("again", calls), Index, inputs, directory).made_by == "again"
    directory.chmod(0o777)
    assert faq_cache.load_or_build(builder("third", calls), Index, inputs, directory).made_by == "third"
    assert calls == ["again", "third"]


def test_an_unwritable_folder_only_costs_the_training(inputs, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    calls: list[str] = []
    for name in ("first", "second"):
        assert faq_cache.load_or_build(builder(name, calls), Index, inputs, blocked / "cache").made_by == name
    assert calls == ["first", "second"]


def test_where_the_cache_is(monkeypatch):
    assert faq_cache.cache_directory({"GOCUA_CACHE_DIR": "off"}) is None
    assert faq_cache.cache_directory({"GOCUA_CACHE_DIR": "/srv/gocua"}) == Path("/srv/gocua")
    assert faq_cache.cache_directory({"XDG_CACHE_HOME": "/x"}) == Path("/x/gocua")
    assert faq_cache.cache_directory({}) == Path.home() / ".cache" / "gocua"

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)  # a container's bare uid, no HOME
    assert faq_cache.cache_directory({}) is None


def test_the_shipped_index_comes_back_from_the_cache_answering_alike(tmp_path):
    """The real index survives the round trip: the same decisions, the same answers."""
    from conversations.faq_match import FaqIndex, default_index

    calls: list[str] = []

    def build() -> FaqIndex:
        calls.append("trained")
        return default_index()  # this process's (trained, or loaded from the run's cache)

    inputs = faq_cache.shipped_inputs()
    assert any(p.name == "letters.yaml" for p in inputs) and any(p.name == "faq_match.py" for p in inputs)
    trained = faq_cache.load_or_build(build, FaqIndex, inputs, tmp_path)
    loaded = faq_cache.load_or_build(build, FaqIndex, inputs, tmp_path)
    assert calls == ["trained"] and loaded is not trained
    for question in ("quen mat khau vneid", "Bố tôi 80 tuổi không có lương hưu có được trợ cấp không?",
                     "thời tiết đà nẵng ngày mai"):
        assert loaded.decide(question) == trained.decide(question)
