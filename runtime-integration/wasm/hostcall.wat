;; Host calls made with the guest's stack nearly spent, for
;; test/host_stack_test.cpp: the export recurses $n deep, then calls an
;; import.  Each frame keeps $n live across the call, so the compiler can
;; neither turn the recursion into a loop nor drop the frame.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "locked_work" (func $locked_work (param i32) (result i32)))
  (memory (export "memory") 1 1)
  ;; Recursion $n deep, then, for $what 0, locked_work(7); for 1,
  ;; fd_write(1, one iovec at 0 of $len bytes from 1024, nwritten at 16).
  (func $descend (export "descend") (param $n i32) (param $what i32) (param $len i32) (result i32)
    (local $r i32)
    (if (i32.eqz (local.get $n)) (then
      (if (i32.eqz (local.get $what)) (then (return (call $locked_work (i32.const 7)))))
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (local.get $len))
      (return (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
    (local.set $r (call $descend (i32.sub (local.get $n) (i32.const 1)) (local.get $what)
                                 (local.get $len)))
    (i32.store (i32.add (i32.const 512) (i32.and (i32.shl (local.get $n) (i32.const 2))
                                                 (i32.const 0xfc)))
               (local.get $r))
    (i32.xor (local.get $r) (local.get $n)))
)
