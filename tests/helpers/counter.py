"""Read-increment-write of a counter object at URL, deliberately slow between read and write.

Run under `dlock run` by the contention tests: without the lock, concurrent copies lose
updates; with it, none may be lost. Reaches object stores through the environment
(AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST) like any user program.
"""

import os
import sys
import time

url = sys.argv[1]
if "://" in url and not url.startswith("file://"):
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, use_listings_cache=False)

    def read() -> bytes | None:
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None

    def write(data: bytes) -> None:
        fs.pipe_file(path, data)
else:
    def read() -> bytes | None:
        try:
            with open(url, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def write(data: bytes) -> None:
        with open(url, "wb") as handle:
            handle.write(data)

assert os.environ.get("DLOCK_LOCK_HELD") == "1", "run me under dlock run"
value = int(read() or b"0")
time.sleep(0.01)
write(str(value + 1).encode())
