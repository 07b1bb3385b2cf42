"""One worker of the writer contention suite: SESSIONS writer sessions, each reading the
counter document in the dataset and writing it back incremented, with its session id.

    python writer_worker.py DATASET LOCK_TARGET|- SESSIONS TTL LOG WORKER_ID

After each session has released the lock, its id is appended to LOG (a local file), so
the test knows which sessions surely completed even if this worker is SIGKILLed.
"""

import json
import os
import sys
import time

import dlock


def session(dataset: str, lock_target: str | None, ttl: float, session_id: str) -> None:
    with dlock.writer(dataset, timeout=-1, ttl=ttl, lock_target=lock_target, note=session_id) as w:
        document = json.loads(w.read_bytes("counter.json"))  # a torn file would not parse
        document["count"] += 1
        document["sessions"].append(session_id)
        time.sleep(0.002)  # widen the read-modify-write window
        w.write_text("counter.json", json.dumps(document))


def main() -> None:
    dataset, lock_target, sessions, ttl, log, worker = sys.argv[1:7]
    for number in range(int(sessions)):
        session_id = f"{worker}-{number}"
        session(dataset, None if lock_target == "-" else lock_target, float(ttl), session_id)
        with open(log, "a") as handle:
            handle.write(session_id + "\n")
            handle.flush()
            os.fsync(handle.fileno())


if __name__ == "__main__":
    main()
