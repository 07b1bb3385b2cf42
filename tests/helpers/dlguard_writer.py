"""A real Deep Lake 3.9 writer for the `dlock guard` tests; runs in the Deep Lake virtualenv.

    python dlguard_writer.py DATASET VALIDITY CREDS_JSON

Deep Lake reads the validity of its dataset lock from deeplake.constants when it opens a
dataset for writing (PersistentLock passes DATASET_LOCK_VALIDITY to Lock), so setting
that module constant first shortens the lock from 300 s to VALIDITY seconds; nothing
else of Deep Lake's lock protocol is touched. Its refresher stays as broken as shipped.

Prints "writable" or the exception's class name, then obeys lines on stdin:
"append" appends a row and flushes (prints the row count), "close" makes the dataset
read-only, where Deep Lake deletes its lock (prints "closed"); at end of input it exits (Deep Lake's atexit
hook deletes a lock still held).
"""

from __future__ import annotations

import json
import sys

import deeplake
import deeplake.constants

dataset, validity, creds = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
deeplake.constants.DATASET_LOCK_VALIDITY = validity
try:
    ds = deeplake.load(dataset, read_only=False, verbose=False, creds=creds)
except Exception as exc:
    print(type(exc).__name__, flush=True)
    sys.exit(0)
print("writable", flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "append":
        ds.x.append(len(ds.x))
        ds.flush()
        print(len(ds.x), flush=True)
    elif command == "close":
        ds.read_only = True  # Deep Lake gives up write access: it deletes its lock
        print("closed", flush=True)
