"""Test helper: an independent TFRecord reader (the crc32c package, Python protobuf).

usage: tfrecord_read.py FILE...   Prints JSON: per file, the list of records as feature dicts.
The tf.train.Example schema is built here from TensorFlow's field numbers, not from our .proto.
"""
import json
import struct
import sys

import crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def schema():
    f = descriptor_pb2.FileDescriptorProto(name="tf_example_test.proto", package="tfx", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto
    O, R = T.LABEL_OPTIONAL, T.LABEL_REPEATED
    for name, typ in [("BytesList", T.TYPE_BYTES), ("FloatList", T.TYPE_FLOAT), ("Int64List", T.TYPE_INT64)]:
        m = f.message_type.add(name=name)
        m.field.add(name="value", number=1, label=R, type=typ)
    feat = f.message_type.add(name="Feature")
    feat.oneof_decl.add(name="kind")
    for i, n in enumerate(["bytes_list", "float_list", "int64_list"]):
        feat.field.add(name=n, number=i + 1, label=O, type=T.TYPE_MESSAGE,
                       type_name=".tfx." + ["BytesList", "FloatList", "Int64List"][i], oneof_index=0)
    feats = f.message_type.add(name="Features")
    entry = feats.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=O, type=T.TYPE_STRING)
    entry.field.add(name="value", number=2, label=O, type=T.TYPE_MESSAGE, type_name=".tfx.Feature")
    feats.field.add(name="feature", number=1, label=R, type=T.TYPE_MESSAGE, type_name=".tfx.Features.FeatureEntry")
    ex = f.message_type.add(name="Example")
    ex.field.add(name="features", number=1, label=O, type=T.TYPE_MESSAGE, type_name=".tfx.Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tfx.Example"))


def masked(data):
    c = crc32c.crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


Example = schema()
out = []
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    at, records = 0, []
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        assert struct.unpack("<I", data[at + 8:at + 12])[0] == masked(data[at:at + 8]), "length crc"
        body = data[at + 12:at + 12 + length]
        assert struct.unpack("<I", data[at + 12 + length:at + 16 + length])[0] == masked(body), "data crc"
        at += 16 + length
        e = Example()
        e.ParseFromString(body)
        rec = {}
        for k, v in e.features.feature.items():
            kind = v.WhichOneof("kind")
            if kind == "bytes_list":
                rec[k] = [b.decode("utf-8") for b in v.bytes_list.value]
            elif kind == "float_list":
                rec[k] = list(v.float_list.value)
            else:
                rec[k] = list(v.int64_list.value)
        records.append(rec)
    out.append(records)
print(json.dumps(out))
