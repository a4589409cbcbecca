#!/usr/bin/env python3
"""Puts real PostgreSQL log lines into CloudWatch Logs (moto_server) for the
integration tests (tests/integration/cloudwatch.rs).

A log file is cut into CloudWatch events the way RDS ships it: one event per
record, a record's TAB continuation lines inside its event (embedded "\\n").
Each event's timestamp is the record's `%t` (`YYYY-MM-DD HH:MM:SS UTC`).

  moto_populate.py ENDPOINT put GROUP STREAM LOGFILE [--only A B | --skip A B]
      Puts the events (all, those with index A <= i < B, or the others), in
      order, in PutLogEvents batches of at most 5,000 events / 900 KB.
  moto_populate.py - shift SRC OUT [AGO_SECONDS]
      Copies the log SRC to OUT with every `YYYY-MM-DD HH:MM:SS UTC` moved by
      one whole-second delta so that the last record is AGO_SECONDS (default
      3600) before now: CloudWatch refuses events older than 14 days.
  moto_populate.py ENDPOINT raw GROUP STREAM JSONFILE
      Puts the events of JSONFILE ([{"timestamp": ms, "message": "..."}]).
  moto_populate.py ENDPOINT ids GROUP
      Prints {"<stream>": [eventId, ...]} of every event of GROUP (all pages).
  moto_populate.py ENDPOINT kinesis-payload GROUP STREAM JSONFILE OUT
      Subscribes GROUP to a Kinesis stream through moto, puts the events of
      JSONFILE, and writes the record data moto delivered (gzip JSON,
      concatenated) to OUT.
"""

import calendar
import json
import re
import sys
import time

import boto3


def client(endpoint, service="logs"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def ensure(logs, group, stream):
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass


def events_of(path):
    """Records of an RDS-prefix stderr log as (timestamp ms, message)."""
    events = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("\t") and events:
                events[-1][1] += "\n" + line
                continue
            try:
                ts = calendar.timegm(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) * 1000
            except ValueError:
                ts = events[-1][0] if events else 0
            events.append([ts, line])
    return events


def put(logs, group, stream, events):
    ensure(logs, group, stream)
    batch, size = [], 0
    for ts, message in events:
        cost = len(message.encode("utf-8", "surrogateescape")) + 26
        if batch and (len(batch) >= 5000 or size + cost > 900_000):
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            batch, size = [], 0
        batch.append({"timestamp": ts, "message": message})
        size += cost
    if batch:
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def shift(src, out, ago=3600):
    with open(src, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    stamps = [calendar.timegm(time.strptime(m, "%Y-%m-%d %H:%M:%S")) for m in STAMP.findall(text)]
    delta = int(time.time()) - ago - max(stamps)

    def moved(m):
        t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + delta
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"

    with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(STAMP.sub(moved, text))
    print(delta)


def main(argv):
    endpoint, command, *rest = argv
    if command == "shift":
        shift(rest[0], rest[1], *(int(a) for a in rest[2:]))
        return
    logs = client(endpoint)
    if command == "put":
        group, stream, path, *opts = rest
        events = events_of(path)
        if opts:
            a, b = int(opts[1]), int(opts[2])
            inside = opts[0] == "--only"
            events = [e for i, e in enumerate(events) if (a <= i < b) == inside]
        put(logs, group, stream, events)
        print(len(events))
    elif command == "raw":
        group, stream, path = rest
        with open(path, encoding="utf-8") as f:
            events = [(e["timestamp"], e["message"]) for e in json.load(f)]
        put(logs, group, stream, events)
        print(len(events))
    elif command == "ids":
        (group,) = rest
        out = {}
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            for e in page["events"]:
                out.setdefault(e["logStreamName"], []).append(e["eventId"])
        print(json.dumps(out))
    elif command == "kinesis-payload":
        group, stream, path, out_path = rest
        kinesis = client(endpoint, "kinesis")
        kinesis.create_stream(StreamName="pgtrail-sub", ShardCount=1)
        arn = kinesis.describe_stream(StreamName="pgtrail-sub")["StreamDescription"]["StreamARN"]
        ensure(logs, group, stream)
        logs.put_subscription_filter(
            logGroupName=group,
            filterName="to-kinesis",
            filterPattern="",
            destinationArn=arn,
            roleArn="arn:aws:iam::123456789012:role/cwl-to-kinesis",
        )
        with open(path, encoding="utf-8") as f:
            events = [(e["timestamp"], e["message"]) for e in json.load(f)]
        put(logs, group, stream, events)
        shard = kinesis.describe_stream(StreamName="pgtrail-sub")["StreamDescription"]["Shards"][0]["ShardId"]
        it = kinesis.get_shard_iterator(
            StreamName="pgtrail-sub", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        data = b"".join(r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"])
        with open(out_path, "wb") as f:
            f.write(data)
        print(len(data))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
