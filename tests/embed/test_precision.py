"""Precisions: the gate table refuses what failed, ``auto`` picks the fastest that passed on
this CPU class, the manifest records the precision and a library refuses another one."""

from __future__ import annotations

import pytest

from lookalike import Library
from lookalike.embed import precision as prec
from lookalike.errors import InvalidParameterError, PrecisionError
from lookalike.store.manifest import MANIFEST_NAME, read_manifest
from tests.imagegen import write_images

AVX2 = frozenset({"avx", "avx2", "fma"})
VNNI = AVX2 | {"avx512f", "avx512_vnni"}
AMX = VNNI | {"amx_int8", "amx_bf16", "avx512_bf16"}


def table(int8_passed=True, int8_class="avx2", int8_speed=300.0, bf16=None):
    rows = {
        "fp32": {"passed": True, "runtime": "onnxruntime", "images_per_second": 170.0, "cpu_class": "avx2"},
        "int8": {"passed": int8_passed, "runtime": "openvino", "images_per_second": int8_speed,
                 "cpu_class": int8_class, "worst_delta": 0.004 if int8_passed else 0.031},
    }
    if bf16:
        rows["bf16"] = bf16
    return {"tolerance": 0.01, "backbones": {"efficientnet-lite0": rows}}


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni amx_int8\n\nprocessor\t: 1\n")
    flags = prec.cpu_flags(cpuinfo)
    assert {"avx2", "avx512_vnni", "amx_int8"} <= flags
    assert prec.cpu_class(flags) == "amx_int8+avx512_vnni"
    assert prec.cpu_class(AVX2) == "avx2"
    assert prec.cpu_flags(tmp_path / "missing") == frozenset()


def test_gate_refuses_a_precision_marked_failed():
    with pytest.raises(PrecisionError, match=r"int8 is refused for backbone 'efficientnet-lite0'.*0\.031.*0\.01"):
        prec.check_precision("efficientnet-lite0", "int8", table(int8_passed=False))
    prec.check_precision("efficientnet-lite0", "int8", table())  # passed: accepted


@pytest.mark.parametrize("precision", ["bf16", "int8"], ids=["bf16", "int8"])
def test_gate_refuses_an_unmeasured_precision(precision):
    with pytest.raises(PrecisionError, match=f"{precision} has no gate result for backbone 'mobilenetv2'"):
        prec.check_precision("mobilenetv2", precision, table())


def test_unknown_precision_is_refused():
    with pytest.raises(InvalidParameterError, match="precision must be one of fp32, bf16, int8, auto"):
        prec.resolve_precision("efficientnet-lite0", "fp16", AVX2, table())


@pytest.mark.parametrize(
    ("gate", "flags", "expected"),
    [
        (table(), AVX2, "int8"),  # measured faster here and passed
        (table(int8_speed=150.0), AVX2, "fp32"),  # measured here, slower than fp32
        (table(int8_passed=False), VNNI, "fp32"),  # failed its gate: never picked
        (table(int8_class="avx512_vnni"), AVX2, "fp32"),  # measured on VNNI, this CPU has none
        (table(int8_class="avx512_vnni"), VNNI, "int8"),
        (table(int8_speed=150.0, int8_class="avx512_vnni"), AMX, "int8"),  # native here, unmeasured class
        (table(bf16={"passed": True, "runtime": "openvino", "images_per_second": 220.0,
                     "cpu_class": "amx_bf16+amx_int8+avx512_bf16+avx512_vnni"}, int8_class="x"),
         AMX, "bf16"),
        (table(bf16={"passed": True, "runtime": "openvino", "images_per_second": 220.0,
                     "cpu_class": "amx_bf16+amx_int8+avx512_bf16+avx512_vnni"}, int8_class="x"),
         VNNI, "int8"),
    ],
    ids=["int8-fast-here", "int8-slow-here", "int8-failed", "no-vnni-falls-back", "vnni", "amx-native",
         "bf16-fastest", "bf16-not-native"],
)
def test_auto_picks_the_fastest_precision_that_passed(gate, flags, expected):
    assert prec.resolve_precision("efficientnet-lite0", "auto", flags, gate) == expected


def test_auto_is_fp32_for_a_backbone_never_measured():
    assert prec.resolve_precision("pixels", "auto", AMX, table()) == "fp32"


def test_shipped_table_is_readable_and_self_consistent():
    shipped = prec.gate_table()
    assert shipped["tolerance"] == 0.01
    for backbone, rows in shipped["backbones"].items():
        assert "fp32" in rows, backbone
        for precision, result in prec.gate_results(backbone, shipped).items():
            assert precision in prec.PRECISIONS
            assert result.passed == (result.worst_delta <= shipped["tolerance"]), (backbone, precision)


def test_manifest_records_the_precision_and_old_manifests_read_as_fp32(tmp_path):
    with Library.create(tmp_path / "new.lookalike", backbone="pixels", precision="auto") as lib:
        assert lib.manifest.embed.precision == "fp32"  # pixels has no reduced precision
    assert read_manifest(tmp_path / "new.lookalike").embed.precision == "fp32"
    path = tmp_path / "new.lookalike" / MANIFEST_NAME
    text = path.read_text().replace('precision = "fp32"\n', "")
    assert "precision" not in text  # a manifest written before the field existed
    path.write_text(text)
    assert read_manifest(tmp_path / "new.lookalike").embed.precision == "fp32"


def test_library_refuses_a_precision_without_a_gate_result(tmp_path):
    with pytest.raises(PrecisionError, match="int8 has no gate result for backbone 'pixels'"):
        Library.create(tmp_path / "lib.lookalike", backbone="pixels", precision="int8")
    assert not (tmp_path / "lib.lookalike").exists()


def test_reopening_with_another_precision_is_refused(tmp_path):
    folder = tmp_path / "lib.lookalike"
    Library.create(folder, backbone="pixels").close()
    with pytest.raises(PrecisionError, match="built at precision fp32, not int8.*--precision fp32"):
        Library.open(folder, precision="int8")
    with pytest.raises(PrecisionError, match="built at precision fp32, not bf16"):
        Library.create(folder, backbone="pixels", exist_ok=True, precision="bf16")
    for accepted in (None, "auto", "fp32"):
        Library.open(folder, precision=accepted).close()


def test_cli_index_refuses_another_precision(tmp_path):
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    write_images(tmp_path / "photos", 3)
    library = tmp_path / "lib.lookalike"
    runner = CliRunner()
    first = runner.invoke(app, ["index", str(tmp_path / "photos"), "-l", str(library), "--backbone", "pixels",
                                "--no-progress"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["index", "-l", str(library), "--precision", "int8", "--no-progress"])
    assert again.exit_code != 0
    assert "built at precision fp32, not int8" in again.output
