;; The seed's module: an exported echo(i32, i32) -> i32 that returns 1,
;; with a linear memory and a table, like the Go-compiled original.  The
;; original's language runtime writes its heap and stack at start-up;
;; init(n) stands for that, writing one byte into each of the first n
;; 4 KiB pages of linear memory, so that every instance leaves dirty pages
;; behind for the allocator to reset.
(module
  ;; 17 wasm pages (1088 KiB): room for 256 dirty 4 KiB pages and more.
  (memory (export "memory") 17 65536)
  (table (export "table") 4 1024 funcref)
  (elem (i32.const 0) $echo)
  (func $echo (export "echo") (param i32 i32) (result i32)
    i32.const 1)
  (func (export "init") (param $pages i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $pages)))
        (i32.store8 (i32.mul (local.get $i) (i32.const 4096)) (i32.const 0xa5))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
