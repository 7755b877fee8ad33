#!/usr/bin/env python3
"""Write stack.wat: recursion to any depth, then a function with a large
frame, for the stack guard test (test/stack_test.cpp).

$big_N calls the host first (its return address is the new frame's first
write, at its bottom), then loads N i64 values from memory into locals and
keeps all of them live across a second call, so the compiled function has
a frame of about 8*N bytes; $descend recurses $depth frames and then calls one of them.  A
frame larger than the guard below a stack can step over it unless every
page is probed (-fstack-clash-protection)."""
import sys

SIZES = (1200, 2400)  # frames of ~9.4 and ~19 KiB: over a 4 KiB guard

# The host's function: a call the compiler cannot inline or drop.
out = ['(module', '  (import "env" "touch" (func $touch (param i32) (result i32)))',
       '  (memory (export "memory") 3 3)']
for n in SIZES:
    locals_ = ' '.join('i64' for _ in range(n))
    out.append(f'  (func $big_{n} (export "big_{n}") (param $p i32) (result i32) (local {locals_})')
    # A call first: its return address is pushed at the bottom of the new
    # frame, the frame's first write, about 8*N bytes below the caller's.
    out.append(f'    (drop (call $touch (local.get $p)))')
    for i in range(n):
        out.append(f'    (local.set {i + 1} (i64.load offset={(i * 8) % 131072} (local.get $p)))')
    out.append(f'    (drop (call $touch (local.get $p)))')
    # Sum every local after the call: all of them are live across it.
    out.append('    (i64.store offset=131072 (local.get $p) (i64.const 0))')
    for i in range(n):
        out.append(f'    (i64.store offset=131072 (local.get $p) (i64.add (i64.load offset=131072 '
                   f'(local.get $p)) (local.get {i + 1})))')
    out.append('    (i32.const 1))')
out.append('''  ;; $which: 0 none, 1 the first big function, 2 the second.
  (func $descend (export "descend") (param $depth i32) (param $which i32) (result i32)
    (local $r i32)
    (if (i32.eqz (local.get $depth))
      (then
        (if (i32.eq (local.get $which) (i32.const 1)) (then (return (call $big_%d (i32.const 0)))))
        (if (i32.eq (local.get $which) (i32.const 2)) (then (return (call $big_%d (i32.const 0)))))
        (return (i32.const 1))))
    (local.set $r (call $descend (i32.sub (local.get $depth) (i32.const 1)) (local.get $which)))
    (i32.store offset=196000 (i32.const 0) (local.get $depth))
    (i32.xor (local.get $r) (i32.and (local.get $depth) (i32.const 0))))''' % SIZES)
out.append(')')
with open(sys.argv[1], 'w') as f:
    f.write('\n'.join(out) + '\n')
