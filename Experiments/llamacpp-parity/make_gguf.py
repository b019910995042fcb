"""Writes a copy of a GGUF model with every tensor dequantized and stored again as F32, F16 or
Q8_0; metadata copied unchanged.

With F32, llama.cpp and rollspec run on exactly the same float32 weights (rollspec dequantizes
the quantized file at load to the same values; the parity check confirms it). F16 and Q8_0 are
the formats llama.cpp runs fastest on one sequence (`../decode-vs-llamacpp`); one-dimensional
tensors (the norms) stay F32 in them, as llama.cpp's own converter keeps them.

    python3 make_gguf.py SmolLM2-135M-Instruct.Q4_1.gguf SmolLM2-135M-Instruct.F32.gguf
    python3 make_gguf.py SmolLM2-135M-Instruct.Q4_1.gguf SmolLM2-135M-Instruct.F16.gguf f16
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize, quantize

# llama_ftype of the whole file (general.file_type) for each output type.
FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7}


def main(src, dst, kind="f32"):
    if kind not in FILE_TYPES:
        sys.exit(f"type must be one of {', '.join(FILE_TYPES)}; got {kind!r}")
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub_type=sub)
    writer.add_file_type(FILE_TYPES[kind])
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = [int(d) for d in reversed(t.shape.tolist())]  # numpy order: slowest first
        values = values.reshape(shape)
        if kind == "f32" or values.ndim == 1:
            writer.add_tensor(t.name, values)
        elif kind == "f16":
            writer.add_tensor(t.name, values.astype(np.float16))
        else:
            q = quantize(values, GGMLQuantizationType.Q8_0)
            writer.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])
