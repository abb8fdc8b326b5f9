"""CPU descriptions and machine fingerprints, on injected /proc/cpuinfo texts."""

from __future__ import annotations

from speechquant.core.machine import MachineInfo, describe_cpu, this_machine

AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2\n"
AVX512_VNNI = (
    "model name\t: Intel(R) Xeon(R) Platinum 8280\nflags\t\t: avx2 fma avx512f avx512_vnni\n"
)
AMX = (
    "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    "flags\t\t: avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
)
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd aes crc32 asimddp i8mm bf16\nCPU part\t: 0xd40\n"


def test_avx2_only_has_no_native_bf16_and_no_int8_dot():
    cpu = describe_cpu(AVX2_ONLY, arch="x86_64")
    assert cpu.model == "AMD EPYC"
    assert cpu.features == ("avx2", "fma")
    assert not cpu.native_bf16 and not cpu.int8_dot


def test_avx512_vnni_has_int8_dot_but_no_bf16():
    cpu = describe_cpu(AVX512_VNNI, arch="x86_64")
    assert cpu.int8_dot and not cpu.native_bf16
    assert "avx512_vnni" in cpu.features


def test_amx_has_both():
    cpu = describe_cpu(AMX, arch="x86_64")
    assert cpu.int8_dot and cpu.native_bf16
    assert {"amx_int8", "amx_bf16", "avx512_bf16"} <= set(cpu.features)


def test_arm_features_use_the_arm_names():
    cpu = describe_cpu(ARM, arch="aarch64")
    assert cpu.model == "ARM part 0xd40"
    assert {"neon", "dotprod", "i8mm", "arm_bf16"} <= set(cpu.features)
    assert cpu.int8_dot and cpu.native_bf16


def test_fingerprint_round_trips_and_keys_the_kind_of_machine():
    a = MachineInfo(describe_cpu(AVX2_ONLY, "x86_64"), cores=2, threads=2, capability="AVX2")
    b = MachineInfo(describe_cpu(AVX2_ONLY, "x86_64"), cores=2, threads=1, capability="AVX2")
    c = MachineInfo(describe_cpu(AMX, "x86_64"), cores=2, threads=2)
    assert a.key == b.key != c.key
    assert MachineInfo.from_json(a.to_json()) == a
    assert a.to_json()["key"] == a.key
    assert a.label() == "AMD EPYC, 2 cores, 2 threads"


def test_this_machine_reads_something_real():
    machine = this_machine(threads=1)
    assert machine.cores >= 1 and machine.cpu.model
    assert machine.capability  # torch names the CPU's capability on every platform
