"""The s3rver the S3 tests run against stores a PUT as S3 does: whole or not at all. s3rver 3.7.1
itself writes a body into the object's file as it arrives, so a client killed midway (a local
worker's losing copy, stopped while it uploads the chunks the winner already stored) left a
truncated object behind: test_s3_modes' killed-coordinator test saw two such chunks once.
servers.S3rver starts it through s3rver_atomic.js; judged here with raw sockets and boto3."""
import os
import socket
import struct
import time

import botocore.exceptions
import pytest


BUCKET = "puts"


def cut_put(s3, key, body, reset):
    """A PUT of `body` whose client goes away after half of it (FIN, or RST when `reset`)."""
    with socket.create_connection(("127.0.0.1", s3.port), timeout=10) as s:
        s.sendall(f"PUT /{BUCKET}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{s3.port}\r\n"
                  f"Content-Length: {len(body)}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
                  + body[:len(body) // 2])
        time.sleep(0.3)  # the server has the head and half the body
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.5)  # and has seen the client go


def read(s3, key):
    try:
        return s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchKey", e.response
        return None


@pytest.mark.parametrize("reset", [False, True])
def test_a_put_cut_midway_leaves_the_object_put_before_it(s3, reset):
    first, second = os.urandom(300_000), os.urandom(300_000)
    s3.client().put_object(Bucket=BUCKET, Key="k", Body=first)
    cut_put(s3, "k", second, reset)
    assert read(s3, "k") == first


@pytest.mark.parametrize("reset", [False, True])
def test_a_put_cut_midway_after_a_whole_put_of_the_same_bytes_leaves_them(s3, reset):
    body = os.urandom(300_000)  # a losing copy's chunk: the winner put the same bytes first
    s3.client().put_object(Bucket=BUCKET, Key="chunk", Body=body)
    cut_put(s3, "chunk", body, reset)
    assert read(s3, "chunk") == body


def test_a_put_cut_midway_of_a_new_key_stores_nothing(s3):
    cut_put(s3, "new", os.urandom(300_000), reset=False)
    assert read(s3, "new") is None
    assert s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", []) == []
    s3.client().put_object(Bucket=BUCKET, Key="new", Body=b"whole")  # and a whole PUT still works
    assert read(s3, "new") == b"whole"
