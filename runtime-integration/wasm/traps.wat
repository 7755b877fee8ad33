;; One export per trap wasm2c code can raise, for the concurrent trap test
;; (test/trap_test.cpp).  Each also has a path that returns normally, so a
;; test can tell a trap from a call that never ran.
(module
  (memory (export "memory") 1 1)
  ;; Out of bounds when addr is past the one page: wasm2c checks nothing
  ;; and the pool's guard faults.
  (func (export "load") (param $addr i32) (result i32)
    (i32.load (local.get $addr)))
  (func (export "unreachable_if") (param $x i32) (result i32)
    (if (local.get $x) (then unreachable))
    (i32.const 7))
  (func (export "div") (param $a i32) (param $b i32) (result i32)
    (i32.div_s (local.get $a) (local.get $b)))
  ;; Recursion $n deep; each frame keeps $n live across the call, so the
  ;; compiler can neither turn it into a loop nor drop the frame.
  (func $deep (export "deep") (param $n i32) (result i32)
    (local $r i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
    (local.set $r (call $deep (i32.sub (local.get $n) (i32.const 1))))
    (i32.store (i32.and (i32.shl (local.get $n) (i32.const 2)) (i32.const 0xfffc))
               (local.get $r))
    (i32.xor (local.get $r) (local.get $n)))
)
