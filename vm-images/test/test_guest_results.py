#!/usr/bin/env python3
"""The results channel's two ends on the host: blocks framed by the guest's
own emit (guest/emit.sh, run by busybox sh as in the guest) and read back by
guest-results.py, intact or damaged the ways a console damaged them."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
READER = os.path.join(TOP, "guest-results.py")
EMIT = os.path.join(TOP, "guest", "emit.sh")
BUSYBOX = shutil.which("busybox")


class Channel(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.channel = os.path.join(self.dir, "channel")
        open(self.channel, "wb").close()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def emit(self, name, data):
        """Send data as block name with the guest's emit; its console line."""
        src = os.path.join(self.dir, "payload")
        with open(src, "wb") as f:
            f.write(data)
        p = subprocess.run([BUSYBOX, "sh", "-c", f'. "{EMIT}"; fail=0; emit "$1" "$2"; exit $fail', "sh", name, src],
                           env={"PATH": os.path.dirname(BUSYBOX) + ":/bin:/usr/bin",
                                "MADVISEV_RESULTS": self.channel},
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def read(self, name, *extra):
        return subprocess.run([sys.executable, READER, self.channel, name, "--job", "bench", *extra],
                              capture_output=True)

    def raw(self):
        with open(self.channel, "rb") as f:
            return f.read()

    def put(self, raw):
        with open(self.channel, "wb") as f:
            f.write(raw)

    def payload(self, rows=500):
        return json.dumps([{"row": i, "ns": i * 1.5} for i in range(rows)], indent=1).encode() + b"\n"

    def test_blocks_read_back_byte_for_byte(self):
        a, b = self.payload(), b"no newline at the end \x00\xff binary"
        self.emit("madvisev-bench", a)
        self.emit("empty", b"")
        self.emit("trace-child-alone-stderr", b)
        for name, want in (("madvisev-bench", a), ("empty", b""), ("trace-child-alone-stderr", b)):
            p = self.read(name)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, want, name)

    def test_foreign_line_inside_a_block_is_an_error_naming_job_and_block(self):
        data = self.payload()
        self.emit("instantiate-wasi", data)
        raw = self.raw()
        # A kernel message in the middle of a line, as the console had it.
        cut = raw.index(b"\n", len(raw) // 2) - 5
        self.put(raw[:cut] + b"\n[  812.4] sched: DL replenish lagged too much\n" + raw[cut:])
        p = self.read("instantiate-wasi")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        msg = p.stderr.decode()
        self.assertIn("job 'bench'", msg)
        self.assertIn("block 'instantiate-wasi' failed verification", msg)

    def test_altered_byte_fails_the_checksum(self):
        self.emit("madvisev-bench", self.payload())
        raw = bytearray(self.raw())
        i = raw.index(b'"row": 17') + len(b'"row": 1')
        raw[i] = ord("8")
        self.put(bytes(raw))
        p = self.read("madvisev-bench")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"sha256", p.stderr)

    def test_truncated_block(self):
        self.emit("madvisev-bench", self.payload())
        self.put(self.raw()[:-300])
        p = self.read("madvisev-bench")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"truncated", p.stderr)

    def test_foreign_bytes_between_blocks_leave_the_blocks_intact(self):
        a, b = self.payload(10), self.payload(20)
        self.emit("one", a)
        first = self.raw()
        self.emit("two", b)
        raw = self.raw()
        self.put(b"garbage before\n" + first + b"hrtimer: interrupt took 64759454 ns\n" + raw[len(first):])
        self.assertEqual(self.read("one").stdout, a)
        self.assertEqual(self.read("two").stdout, b)
        listing = subprocess.run([sys.executable, READER, self.channel, "--list"], capture_output=True, text=True)
        self.assertIn("(foreign)", listing.stdout)

    def test_missing_block_and_stale_output(self):
        self.emit("one", b"[]\n")
        out = os.path.join(self.dir, "vm-two.json")
        with open(out, "w") as f:
            f.write("[] from an earlier run\n")
        p = self.read("two", "-o", out)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no block 'two'", p.stderr)
        self.assertFalse(os.path.exists(out), "a failed block must not leave an earlier run's file")
        p = self.read("one", "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"[]\n")

    def test_block_sent_twice_is_an_error(self):
        self.emit("one", b"1\n")
        self.emit("one", b"2\n")
        p = self.read("one")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"sent 2 times", p.stderr)

    def test_unreadable_channel(self):
        p = subprocess.run([sys.executable, READER, os.path.join(self.dir, "none"), "x", "--job", "sweep"],
                           capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"job 'sweep'", p.stderr)

    def test_emit_without_channel_fails(self):
        src = os.path.join(self.dir, "payload")
        open(src, "w").close()
        p = subprocess.run([BUSYBOX, "sh", "-c", f'. "{EMIT}"; fail=0; emit x "$1"; exit $fail', "sh", src],
                           env={"PATH": "/bin:/usr/bin", "MADVISEV_RESULTS": ""}, capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no results channel", p.stdout)


if __name__ == "__main__":
    if BUSYBOX is None:
        sys.exit("test_guest_results.py: busybox missing (package busybox-static)")
    unittest.main()
