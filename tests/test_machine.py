"""What ``metrics.csv`` and the benchmarks say about the CPU, read from /proc/cpuinfo text."""

from __future__ import annotations

from cnnlab.machine import parse_cpuinfo

# Two processors of a 2-core cloud VM as Linux prints them (fields abridged, order kept).
ZEN5 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vp2intersect

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vp2intersect
"""

ZEN3 = """processor\t: 0
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma
"""

SAPPHIRE_RAPIDS = """processor\t: 0
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""


def test_same_named_cpus_are_told_apart_by_family_and_model():
    assert parse_cpuinfo(ZEN5)[0] == "AMD EPYC (family 26 model 2)"
    assert parse_cpuinfo(ZEN3)[0] == "AMD EPYC (family 25 model 1)"


def test_only_the_flags_that_decide_precision_and_speed_are_kept_in_a_fixed_order():
    assert parse_cpuinfo(ZEN5)[1] == ("avx512_bf16", "avx512f", "avx2")
    assert parse_cpuinfo(ZEN3)[1] == ("avx2",)
    assert parse_cpuinfo(SAPPHIRE_RAPIDS)[1] == ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


def test_text_without_the_fields_gives_an_unknown_cpu_without_flags():
    assert parse_cpuinfo("processor\t: 0\n") == ("unknown CPU", ())
    assert parse_cpuinfo("") == ("unknown CPU", ())
