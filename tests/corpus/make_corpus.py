#!/usr/bin/python3
"""Writes the malformed-input corpus (kept in the repo; rerun only to change it):
configs/*.yaml (bad configs, exit 2), kerchunk/*.json (bad reference sets, exit 4) and
netcdf/*.nc (truncated or corrupted files, exit 4), plus expected.json: file -> exit code.
NetCDF files start from a small valid file that zp-make-sample writes (pass its path)."""
import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = "../../../../shared/fixtures/era5_small/refs.json"  # relative to configs/
expected = {}


def put(folder, name, text, code):
    path = HERE / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    expected[f"{folder}/{name}"] = code


def alias_bomb():
    """A few hundred bytes of nested YAML aliases that stand for 9^9 strings."""
    text = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, 9):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
    return text + "add_attrs: {bomb: *l8}\n"


def configs():
    base = f'data_uri: "{FIXTURE}"\ncache_store: out.zarr\n'
    bad = {
        "empty": "", "list": "- a\n- b\n", "scalar": "42\n", "not_yaml": "data_uri: [unclosed\n",
        "tabs": "data_uri:\t\t- x: [\n", "no_data_uri": "cache_store: out.zarr\n",
        "no_store": f'data_uri: "{FIXTURE}"\n', "both_stores": base + "cache_dir: c/\n",
        "unknown_key": base + "colour: blue\n", "typo_key": base + "preprocesors: []\n",
        "engine_bad": base + "engine: grib\n", "engine_number": base + "engine: 5\n",
        "chunks_list": base + "chunks: [24, 19]\n", "chunks_zero": base + "chunks: {time: 0}\n",
        "chunks_negative": base + "chunks: {time: -5}\n", "chunks_float": base + "chunks: {time: 2.5}\n",
        "chunks_string": base + "chunks: {time: big}\n", "chunks_unknown_dim": base + "chunks: {depth: 4}\n",
        "memory_units": base + "memory_limit: 2 parsecs\n", "memory_negative": base + "memory_limit: -2GB\n",
        "memory_zero": base + "memory_limit: 0\n", "memory_list": base + "memory_limit: [1]\n",
        "timeout_bad": base + "worker_timeout: soon\n", "timeout_colons": base + 'worker_timeout: "1::2"\n',
        "num_jobs_zero": base + "num_jobs: 0\n", "num_jobs_text": base + "num_jobs: many\n",
        "workers_negative": base + "simultaneous_worker_limit: -1\n",
        "deploy_bad": base + "deploy_mode: cloud\n", "encoding_bad": base + "encoding: packed\n",
        "zarr_format_4": base + "zarr_format: 4\n", "compressor_bad": base + "compressor: {id: brotli}\n",
        "compressor_list": base + "compressor: [blosc]\n", "blosc_cname": base + "compressor: {id: blosc, cname: snappy2}\n",
        "overwrite_text": base + "overwrite: maybe\n", "resume_number": base + "resume: 3\n",
        "preprocessors_map": base + "preprocessors: {type: sel}\n",
        "preprocessor_no_type": base + "preprocessors: [{time: [1, 2]}]\n",
        "preprocessor_unknown": base + "preprocessors: [{type: zoom}]\n",
        "preprocessor_type_number": base + "preprocessors: [{type: 7}]\n",
        "sel_reversed_empty": base + "preprocessors: [{type: sel, latitude: [100, 95]}]\n",
        "sel_scalar_number": base + "preprocessors: [{type: sel, latitude: 5}]\n",
        "sel_three": base + "preprocessors: [{type: sel, latitude: [1, 2, 3]}]\n",
        "sel_unknown_dim": base + "preprocessors: [{type: sel, height: [1, 2]}]\n",
        "sel_time_numbers": base + "preprocessors: [{type: sel, time: [1, 2]}]\n",
        "sel_time_bad_date": base + 'preprocessors: [{type: sel, time: ["2000-13-01", "2000-14-01"]}]\n',
        "sel_time_words": base + 'preprocessors: [{type: sel, time: ["yesterday", "today"]}]\n',
        "sel_time_feb30": base + 'preprocessors: [{type: sel, time: ["2000-02-30", "2000-03-01"]}]\n',
        "sel_time_outside": base + 'preprocessors: [{type: sel, time: ["1990-01-01", "1990-02-01"]}]\n',
        "sel_lat_strings": base + 'preprocessors: [{type: sel, latitude: ["north", "south"]}]\n',
        "isel_reversed": base + "preprocessors: [{type: isel, time: [10, 5]}]\n",
        "isel_float": base + "preprocessors: [{type: isel, time: [1.5, 4]}]\n",
        "isel_unknown_dim": base + "preprocessors: [{type: isel, z: [0, 1]}]\n",
        "reverse_no_dim": base + "preprocessors: [{type: reverse_axis}]\n",
        "reverse_unknown_dim": base + "preprocessors: [{type: reverse_axis, dim: z}]\n",
        "rename_missing_fields": base + "preprocessors: [{type: rename}]\n",
        "rename_unknown": base + "preprocessors: [{type: rename, var_id: nope, new_name: x}]\n",
        "rename_to_slash": base + "preprocessors: [{type: rename, var_id: d2m, new_name: a/b}]\n",
        "rename_to_dotdot": base + "preprocessors: [{type: rename, var_id: d2m, new_name: ..}]\n",
        "rename_clash": base + "preprocessors: [{type: rename, var_id: d2m, new_name: t2m}]\n",
        "roll_misspelled_shifts": base + "preprocessors: [{type: roll, dim: longitude, shift: 10}]\n",
        "variables_missing": base + "variables: [nope]\n", "variables_number": base + "variables: 5\n",
        "variables_bad_list": base + "variables: [[d2m]]\n",
        "variable_transform_unknown": base + "variables: {d2m: [{type: blur}]}\n",
        "variable_transform_no_type": base + "variables: {d2m: [{new_name: x}]}\n",
        "variable_rename_slash": base + "variables: {d2m: [{type: rename, new_name: ../evil}]}\n",
        "variable_astype_complex": base + "variables: {d2m: [{type: astype, dtype: c16}]}\n",
        "add_attrs_list": base + "add_attrs: [a, b]\n", "slurm_list": base + "slurm: [debug]\n",
        "slurm_unknown": base + "slurm: {queue: debug}\n", "slurm_newline": base + 'slurm: {partition: "a\\nb"}\n',
        "threads_zero": base + "threads_per_worker: 0\n", "memory_too_small": base + "memory_limit: 1MB\n",
        # Hostile: each once crashed, hung or ate all memory.
        "duplicate_key": base + "cache_store: other.zarr\n",
        "workers_2_31": base + "simultaneous_worker_limit: 2147483648\n",
        "workers_2_32": base + "simultaneous_worker_limit: 4294967296\n",
        "threads_2_32": base + "threads_per_worker: 4294967296\n",
        "yaml_alias_bomb": base + alias_bomb(),
        "yaml_deep": base + "add_attrs: {a: " + "[" * 20000 + "]" * 20000 + "}\n",
    }
    for name, text in bad.items():
        put("configs", name + ".yaml", text, 2)


def kerchunk():
    zarray = {"chunks": [2], "compressor": None, "dtype": "<f4", "fill_value": 0, "filters": None, "order": "C",
              "shape": [4], "zarr_format": 2}
    attrs = {"_ARRAY_DIMENSIONS": ["x"]}

    def refs(**over):
        r = {".zgroup": '{"zarr_format": 2}', "x/.zarray": json.dumps(zarray), "x/.zattrs": json.dumps(attrs),
             "x/0": "base64:" + base64.b64encode(b"\0" * 8).decode(), "x/1": ["data.bin", 0, 8]}
        r.update(over)
        return json.dumps({"version": 1, "refs": {k: v for k, v in r.items() if v is not None}})

    def arr(**over):
        z = dict(zarray)
        z.update(over)
        return json.dumps(z)

    bad = {
        "not_json": "{refs: nope", "empty": "", "list": "[1, 2]", "string": '"refs"',
        "version_2": '{"version": 2, "refs": {}}', "version_string": '{"version": "1", "refs": {}}',
        "no_refs": '{"version": 1}', "refs_list": '{"version": 1, "refs": []}',
        "no_arrays": '{"version": 1, "refs": {".zgroup": "{}"}}',
        "ref_number": refs(**{"x/1": 5}), "ref_short_list": refs(**{"x/1": ["data.bin", 0]}),
        "ref_negative_offset": refs(**{"x/1": ["data.bin", -8, 8]}),
        "ref_negative_length": refs(**{"x/1": ["data.bin", 0, -8]}),
        "ref_float_offset": refs(**{"x/1": ["data.bin", 0.5, 8]}),
        "ref_past_eof": refs(**{"x/1": ["data.bin", 1000, 8]}),
        "ref_missing_file": refs(**{"x/1": ["missing.bin", 0, 8]}),
        "ref_remote": refs(**{"x/1": ["s3://bucket/data.bin", 0, 8]}),
        "ref_empty_url": refs(**{"x/1": ["", 0, 8]}),
        "bad_base64": refs(**{"x/0": "base64:@@@@"}), "base64_length": refs(**{"x/0": "base64:A"}),
        "inline_wrong_size": refs(**{"x/0": "base64:AAAA"}),
        "zarray_not_json": refs(**{"x/.zarray": "{nope"}), "zarray_list": refs(**{"x/.zarray": "[1]"}),
        "zarray_no_shape": refs(**{"x/.zarray": arr(shape=None)}),
        "zarray_shape_text": refs(**{"x/.zarray": arr(shape="4")}),
        "zarray_negative_shape": refs(**{"x/.zarray": arr(shape=[-4])}),
        "zarray_zero_chunk": refs(**{"x/.zarray": arr(chunks=[0])}),
        "zarray_chunks_rank": refs(**{"x/.zarray": arr(chunks=[2, 2])}),
        "zarray_dtype_complex": refs(**{"x/.zarray": arr(dtype="<c8")}),
        "zarray_dtype_object": refs(**{"x/.zarray": arr(dtype="|O")}),
        "zarray_dtype_number": refs(**{"x/.zarray": arr(dtype=4)}),
        "zarray_format_3": refs(**{"x/.zarray": arr(zarr_format=3)}),
        "zarray_huge": refs(**{"x/.zarray": arr(shape=[10 ** 15], chunks=[1])}),
        "compressor_unknown": refs(**{"x/.zarray": arr(compressor={"id": "bz2"})}),
        "compressor_no_id": refs(**{"x/.zarray": arr(compressor={"level": 1})}),
        "filter_unknown": refs(**{"x/.zarray": arr(filters=[{"id": "delta"}])}),
        "chunk_not_zlib": refs(**{"x/.zarray": arr(compressor={"id": "zlib"})}),
        "chunk_not_blosc": refs(**{"x/.zarray": arr(compressor={"id": "blosc"})}),
        "chunk_not_zstd": refs(**{"x/.zarray": arr(compressor={"id": "zstd"})}),
        "chunk_not_lz4": refs(**{"x/.zarray": arr(compressor={"id": "lz4"})}),
        "chunk_fletcher_bad": refs(**{"x/.zarray": arr(filters=[{"id": "fletcher32"}])}),
        "no_dimensions": refs(**{"x/.zattrs": "{}"}),
        "dimensions_rank": refs(**{"x/.zattrs": '{"_ARRAY_DIMENSIONS": ["x", "y"]}'}),
        "zattrs_list": refs(**{"x/.zattrs": "[]"}), "group_attrs_list": refs(**{".zattrs": "[1]"}),
        "dim_length_clash": refs(**{"y/.zarray": arr(shape=[5]), "y/.zattrs": json.dumps(attrs)}),
        "template_unclosed": json.dumps({"version": 1, "templates": {"u": "data.bin"},
                                         "refs": json.loads(refs(**{"x/1": ["{{u", 0, 8]}))["refs"]}),
        "template_unknown": json.dumps({"version": 1, "refs": json.loads(refs(**{"x/1": ["{{v}}", 0, 8]}))["refs"]}),
        "templates_list": json.dumps({"version": 1, "templates": ["a"], "refs": json.loads(refs())["refs"]}),
        "gen_not_list": json.dumps({"version": 1, "gen": {}, "refs": json.loads(refs())["refs"]}),
        "gen_no_key": json.dumps({"version": 1, "gen": [{"url": "data.bin"}], "refs": json.loads(refs())["refs"]}),
        "gen_bad_expression": json.dumps({"version": 1, "refs": json.loads(refs())["refs"], "gen": [
            {"key": "x/{{i}}", "url": "data.bin", "offset": "{{i *}}", "length": "8",
             "dimensions": {"i": {"stop": 2}}}]}),
        "gen_division_zero": json.dumps({"version": 1, "refs": json.loads(refs())["refs"], "gen": [
            {"key": "x/{{i}}", "url": "data.bin", "offset": "{{8 / i}}", "length": "8",
             "dimensions": {"i": {"stop": 2}}}]}),
        "gen_zero_step": json.dumps({"version": 1, "refs": json.loads(refs())["refs"], "gen": [
            {"key": "x/{{i}}", "url": "data.bin", "length": "8", "dimensions": {"i": {"stop": 2, "step": 0}}}]}),
        # Hostile: each once crashed, hung or ate all memory.
        "attrs_deep": refs(**{".zattrs": '{"a": ' + "[" * 60000 + "]" * 60000 + "}", "y/.zarray": arr(),
                              "y/.zattrs": '{"_ARRAY_DIMENSIONS": ["x"], "deep": ' + "[" * 60000 + "]" * 60000 + "}",
                              "y/0": "base64:" + base64.b64encode(b"\0" * 8).decode(), "y/1": ["data.bin", 0, 8]}),
        "refs_deep": '{"version": 1, "refs": {"a": ' + "[" * 60000 + "]" * 60000 + "}}",
        "gen_huge": json.dumps({"version": 1, "refs": json.loads(refs())["refs"], "gen": [
            {"key": "x/{{i}}.{{j}}", "url": "data.bin", "offset": "0", "length": "8",
             "dimensions": {"i": {"stop": 2147483647}, "j": {"stop": 2147483647}}}]}),
        "gen_offset_text": json.dumps({"version": 1, "refs": json.loads(refs())["refs"], "gen": [
            {"key": "x/{{i}}", "url": "data.bin", "offset": "99999999999999999999", "length": "8",
             "dimensions": {"i": {"stop": 2}}}]}),
        "ref_length_2_63": refs(**{"x/1": ["data.bin", 0, 2 ** 63 - 1]}),
        "zarray_length_2_63": refs(**{"x/.zarray": ["data.bin", 0, 2 ** 63 - 1]}),
    }
    put("kerchunk", "data.bin", b"\0" * 16, None)
    expected.pop("kerchunk/data.bin")
    for name, text in bad.items():
        put("kerchunk", name + ".json", text, 4)


def netcdf(sample):
    data = Path(sample).read_bytes()
    n = len(data)

    def flip(offset, count=16):
        b = bytearray(data)
        for i in range(offset, min(offset + count, n)):
            b[i] ^= 0xA5
        return bytes(b)

    cases = {
        "empty": b"", "garbage": bytes(range(256)) * 8, "hdf5_signature_only": data[:8],
        "truncated_header": data[:512], "truncated_1k": data[:1024], "truncated_half": data[: n // 2],
        "truncated_last_byte": data[:-1] if n > 1 else b"", "superblock_flipped": flip(8, 24),
        "classic_magic_garbage": b"CDF\x01" + bytes(60),
    }
    # Data chunks sit after the metadata: corrupt the compressed bytes near the end of the file.
    for k, frac in enumerate((0.70, 0.80, 0.90, 0.97)):
        cases[f"chunk_bytes_flipped_{k}"] = flip(int(n * frac), 64)
    for name, content in cases.items():
        put("netcdf", name + ".nc", content, 4)


if __name__ == "__main__":
    # Without a sample file the NetCDF cases are kept as they are.
    folders = ("configs", "kerchunk", "netcdf") if len(sys.argv) > 1 else ("configs", "kerchunk")
    if len(sys.argv) == 1:
        old = json.loads((HERE / "expected.json").read_text())
        expected.update({k: v for k, v in old.items() if k.startswith("netcdf/")})
    for folder in folders:
        shutil.rmtree(HERE / folder, ignore_errors=True)
    configs()
    kerchunk()
    if len(sys.argv) > 1:
        netcdf(sys.argv[1])
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(len(expected), "inputs")
